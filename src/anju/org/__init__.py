"""The organisation tree: city bureau → district → station → police office → community."""
