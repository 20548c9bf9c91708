"""Build helpers of the API reference site: MkDocs hooks (``hooks:`` in mkdocs.yml) and a griffe extension.

The README stays the one source of the guides: a page holds ``<!-- readme: HEADING -->`` and the
hook puts the README section whose heading starts with ``HEADING`` there (``# …`` or ``## …``,
up to the next one), its headings shifted so that the section's own is ``#`` (``| level 2``: ``##``).
Links in it are rewritten for the page: one to a file under ``docs/`` points at that page, an image
elsewhere in the repository is copied into the site, any other link to a repository file (the
benchmark reports, the example plug-in) keeps its text and drops the link, since the site does not
hold those files. ``<!-- neat-pytest-options -->`` becomes the table of the conformance suite's
pytest options, read from ``neat.conformance.plugin.pytest_addoption`` itself.

:class:`NeatDocstrings` (the mkdocstrings handler's ``extensions:``) lets griffe read the library's
docstrings as the code writes them: Sphinx roles (``:class:`NGAdam```) become cross-references where
the target is on the site (plain code where it is not), ``#:`` comments above an assignment become
its docstring, and ``neat.conformance`` (the folder ``conformance/`` beside ``neat/``, installed as
``neat.conformance``) is loaded as the subpackage it is at run time.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import griffe
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

INCLUDE = re.compile(r"^<!-- readme: (?P<heading>.+?)(?: \| level (?P<level>[1-6]))? -->$", re.M)
PYTEST_OPTIONS = "<!-- neat-pytest-options -->"
HEADING = re.compile(r"^(?P<hashes>#{1,6}) (?P<text>.*)$")
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
IMAGE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif"}
_images: set[str] = set()  # repository paths of the README's images, copied into the site


def _outside_fences(lines):
    """``(line, in_code)`` for every line: whether it sits inside a fenced code block."""
    in_code = False
    for line in lines:
        if FENCE.match(line):
            yield line, True
            in_code = not in_code
        else:
            yield line, in_code


def readme_sections(text: str) -> list[tuple[int, str, list[str]]]:
    """The README's ``#`` and ``##`` sections: ``(level, heading text, lines)``, headings included."""
    sections: list[tuple[int, str, list[str]]] = []
    for line, in_code in _outside_fences(text.splitlines()):
        match = None if in_code else HEADING.match(line)
        if match and len(match["hashes"]) <= 2:
            sections.append((len(match["hashes"]), match["text"].strip(), [line]))
        elif sections:
            sections[-1][2].append(line)
    return sections


def readme_section(prefix: str, text: str | None = None) -> tuple[int, list[str]]:
    """The one README section whose heading starts with ``prefix``; a ``ValueError`` for none or several."""
    found = [
        (level, lines)
        for level, heading, lines in readme_sections(text or README.read_text())
        if heading.startswith(prefix)
    ]
    if len(found) != 1:
        raise ValueError(f"README.md has {len(found)} sections whose heading starts with {prefix!r}, not one")
    return found[0]


def _rewrite_link(match: re.Match, page_dir: str) -> str:
    bang, text, target = match["bang"], match["text"], match["target"]
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):  # a URL or an anchor of the page itself
        return match[0]
    path, _, anchor = target.partition("#")
    file = (ROOT / path).resolve()
    if file.is_file() and file.is_relative_to(DOCS):
        href = posixpath.relpath(file.relative_to(DOCS).as_posix(), page_dir or ".")
        return f"{bang}[{text}]({href}{'#' + anchor if anchor else ''})"
    if bang and file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
        _images.add(file.relative_to(ROOT).as_posix())
        return f"{bang}[{text}]({posixpath.relpath(file.relative_to(ROOT).as_posix(), page_dir or '.')})"
    if not file.exists():
        raise ValueError(f"README.md links to {target!r}, which is not in the repository")
    return text  # a repository file the site does not hold: its name stays (the text), the link goes


def include(prefix: str, page_src_uri: str, level: int = 1, text: str | None = None) -> str:
    """The README section ``prefix`` as Markdown for the page ``page_src_uri`` (see the module docstring)."""
    own_level, lines = readme_section(prefix, text)
    shift = level - own_level
    page_dir = posixpath.dirname(page_src_uri)
    out = []
    for line, in_code in _outside_fences(lines):
        if not in_code:
            heading = HEADING.match(line)
            if heading:
                line = "#" * max(1, len(heading["hashes"]) + shift) + " " + heading["text"]
            line = LINK.sub(lambda m: _rewrite_link(m, page_dir), line)
        out.append(line)
    return "\n".join(out).strip() + "\n"


class _OptionRecorder:
    """What ``pytest_addoption`` hands its options to: records them instead of parsing."""

    def __init__(self):
        self.options: list[tuple[tuple, dict]] = []

    def getgroup(self, *args, **kwargs):
        return self

    def addoption(self, *names, **kwargs):
        self.options.append((names, kwargs))


def pytest_options_table() -> str:
    """The conformance suite's pytest options as a Markdown table, from the plug-in's own ``pytest_addoption``."""
    from neat.conformance import plugin

    recorder = _OptionRecorder()
    plugin.pytest_addoption(recorder)
    rows = ["| option | what it does |", "| --- | --- |"]
    for names, kwargs in recorder.options:
        metavar = kwargs.get("metavar")
        spelled = ", ".join(f"`{name}={metavar}`" if metavar else f"`{name}`" for name in names)
        rows.append(f"| {spelled} | {kwargs.get('help', '')} |")
    return "\n".join(rows) + "\n"


# MkDocs hooks ---------------------------------------------------------------------------------


def on_page_markdown(markdown, page, config, files):
    def replace(match):
        try:
            return include(match["heading"], page.file.src_uri, int(match["level"] or 1))
        except ValueError as error:
            raise PluginError(f"{page.file.src_uri}: {error}") from error

    markdown = INCLUDE.sub(replace, markdown)
    if PYTEST_OPTIONS in markdown:
        markdown = markdown.replace(PYTEST_OPTIONS, pytest_options_table())
    return markdown


def on_files(files, config):
    # The pages' includes run later (on_page_markdown): collect the README's images now.
    for match in LINK.finditer(README.read_text()):
        file = (ROOT / match["target"].partition("#")[0]).resolve()
        if match["bang"] and file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES and not file.is_relative_to(DOCS):
            _images.add(file.relative_to(ROOT).as_posix())
    for path in sorted(_images):
        if files.get_file_from_path(path) is None:
            files.append(File.generated(config, path, abs_src_path=str(ROOT / path)))
    return files


# griffe extension ---------------------------------------------------------------------------

ROLE = re.compile(r":(?:class|func|data|meth|attr|mod|exc|obj):`~?\.?(?P<target>[^`]+)`")


def _target_path(obj: griffe.Object, name: str) -> str | None:
    head, _, rest = name.partition(".")
    try:
        path = obj.resolve(head)
    except griffe.NameResolutionError:
        return name if rest else None  # a dotted name is taken as a full path
    return f"{path}.{rest}" if rest else path


def _cross_references(obj: griffe.Object, text: str) -> str:
    """Sphinx roles as mkdocs-autorefs' optional references: a link where the target is documented."""

    def replace(match):
        name = match["target"].strip()
        path = _target_path(obj, name)
        if path is None:
            return f"`{name}`"
        return f'<autoref identifier="{path}" optional><code>{name}</code></autoref>'

    return ROLE.sub(replace, text)


def _comment_docstring(attr: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines right above an attribute's assignment, if any."""
    path = attr.filepath
    lines = attr.lines_collection[path] if isinstance(path, Path) and path in attr.lines_collection else None
    if not lines or attr.lineno is None:
        return None
    comment = []
    index = attr.lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        comment.insert(0, lines[index].lstrip()[2:].strip())
        index -= 1
    return "\n".join(comment) or None


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class NeatDocstrings(griffe.Extension):
    """See the module docstring."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        if pkg.name != "neat":
            return
        checkout = Path(pkg.filepath).parent.parent if isinstance(pkg.filepath, Path) else None
        if "conformance" not in pkg.members and checkout and (checkout / "conformance" / "__init__.py").is_file():
            conformance = griffe.load(
                "conformance",
                search_paths=[checkout],
                modules_collection=loader.modules_collection,
                lines_collection=loader.lines_collection,
                docstring_parser=loader.docstring_parser,
                docstring_options=loader.docstring_options,
            )
            pkg.set_member("conformance", conformance)
        for obj in _walk(pkg):
            if obj.is_attribute and obj.docstring is None and (comment := _comment_docstring(obj)):
                obj.docstring = griffe.Docstring(
                    comment, parent=obj, parser=loader.docstring_parser, parser_options=loader.docstring_options
                )
            if obj.docstring is not None:
                obj.docstring.value = _cross_references(obj, obj.docstring.value)
