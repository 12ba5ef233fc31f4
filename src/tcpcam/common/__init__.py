"""Small host-side pieces that several rooms share: JPEG checks, atomic files, option parsers."""
