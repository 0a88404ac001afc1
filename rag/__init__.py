"""A research assistant over ML paper abstracts, with verified citations."""

__all__: list[str] = []
