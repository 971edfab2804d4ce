"""Safety alerts: raised by answers, shown first to clinicians, emailed until acknowledged."""
