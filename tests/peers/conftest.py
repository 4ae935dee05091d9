import pathlib
import sys

# the peers' tests reuse the model stand-ins of tests/conftest.py
sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))
