"""Data sources: MovieLens readers, the GroupLens downloader and a synthetic generator."""
