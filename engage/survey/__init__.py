"""The patient's side: invitation links and the survey pages behind them."""
