"""Static files of the command-center dashboard and the phone pages (served by the app; no CDN)."""
