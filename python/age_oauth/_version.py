# The version of the age-oauth binary this package was built with (= Cargo.toml's; a test checks it).
__version__ = "0.1.0"
