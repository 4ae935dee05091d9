"""Citations resolve: every `[KEY eq. N]`-style tag in the package, the notebooks and the tests names a key of
REFERENCES.md, and the notebooks cite the source documents by key, never as "seed 00N"."""
import pathlib
import re

ROOT = pathlib.Path(__file__).parents[1]
LOCATORS = r"(?:eq|eqs|Alg|Tab|App|Fig|Thm|Theorem|Sec)\.|§"
TAG = re.compile(rf"\[([A-Z][A-Za-z0-9&.\- ]{{0,24}}?) (?:{LOCATORS})")


def reference_keys() -> set[str]:
    keys = set()
    for line in (ROOT / "REFERENCES.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("key", "---"):
            keys.add(cells[0])
    return keys


def cited_files():
    yield from (ROOT / "diffedu").rglob("*.py")
    yield from (ROOT / "notebooks" / "src").glob("*.py")
    yield from (p for p in (ROOT / "tests").glob("*.py") if p.name != "test_references.py")
    yield ROOT / "README.md"
    yield ROOT / "NOTATION.md"


def test_reference_keys_include_papers_and_sources():
    keys = reference_keys()
    assert {"DDPM", "DDIM", "EDM", "UDM", "DDIM notes", "DDPM notes", "HW6", "EDM notes"} <= keys


def test_every_located_citation_names_a_reference_key():
    keys = reference_keys()
    unknown = {}
    for path in cited_files():
        for key in TAG.findall(path.read_text()):
            if key not in keys:
                unknown.setdefault(key, path.relative_to(ROOT).as_posix())
    assert not unknown, f"citations of keys missing from REFERENCES.md: {unknown}"


def test_the_tag_pattern_finds_a_citation():
    assert TAG.findall("see [DDIM eq. 12] and [EDM notes §1.2] and [Nobody Alg. 3]") == ["DDIM", "EDM notes", "Nobody"]


def test_notebooks_cite_sources_by_key():
    for path in (ROOT / "notebooks" / "src").glob("*.py"):
        assert not re.search(r"seed\s*`?0\d\d", path.read_text()), f"{path.name} cites a source as 'seed 00N'"
