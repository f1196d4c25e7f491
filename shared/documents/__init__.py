"""The one document layer (issue 18): typst templates + data → PDF (engine.py), money and dates in a document's
words (words.py), the archive of issued documents and their 文号 sequences (archive.py), xlsx tables (xlsx.py)."""
