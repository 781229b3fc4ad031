"""Image x host -> verdict: match, check, resolve, EDF, and the site crawl and report."""
