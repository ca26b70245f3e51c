"""The analyst's dashboard: the curated views on one page that refreshes itself."""
