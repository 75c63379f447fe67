"""CI providers: detection and everything provider-specific (GitHub Actions today)."""
