"""Services (units of care) and which staff belong to them."""
