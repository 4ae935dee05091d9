"""The wheel carries the course: its notebooks and the measured tables they read are copied into
diffedu/course/ at build time (`diffedu notebooks DIR` copies them out; `diffedu.course` reads them).
Everything else is in pyproject.toml.  An editable install skips the copy: there diffedu.course reads the
repository's notebooks/ and benchmarks/results/ directly."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
COURSE = {"notebooks": ("notebooks", "[0-9][0-9]_*.ipynb"), "results": ("benchmarks/results", "*.md")}


class BuildPyWithCourse(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name, (folder, pattern) in COURSE.items():
            files = sorted((HERE / folder).glob(pattern))
            if not files:
                raise SystemExit(f"setup.py: no {pattern} in {folder}/: the wheel would have no course")
            target = Path(self.build_lib) / "diffedu" / "course" / name
            target.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copyfile(f, target / f.name)


setup(cmdclass={"build_py": BuildPyWithCourse})
