"""YAML loading that remembers line numbers, so errors can name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from feedback_check import inputfile
from feedback_check.errors import ConfigError

#: Deepest nesting of mappings and lists accepted: real profiles need fewer than ten levels, and a
#: bounded depth keeps every walker of the data far from Python's recursion limit.
MAX_DEPTH = 64
#: How many values aliases may add beyond the document's own (`*anchor` repeats its whole value): a
#: 600-byte "billion laughs" document would otherwise stand for 10^9 values to every later walk.
MAX_ALIAS_EXPANSION = 100_000


class LineDict(dict[Any, Any]):
    """A mapping from YAML that knows the line (1-based) of each key and of itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = 0
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence from YAML that knows its line and the line of each item."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = 0
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


# libyaml's parser when present (5x faster on large profiles); the constructors below run either way
# and read line numbers from the node marks both parsers provide.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A scalar PyYAML cannot turn into a value (a 5,000-digit number, 2024-13-45) raises a bare
        # ValueError/OverflowError without a position: give it the node's line.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as e:
            # The value itself is not shown: it may be an inline passphrase that YAML took for a date
            # or a number. Quoting it makes it plain text.
            kind = node.tag.rsplit(":", 1)[-1] if isinstance(node.tag, str) else "value"
            raise ConfigError(f"cannot read the value on this line as a YAML {kind} ({str(e).split(':')[0]}); "
                              "put it in quotes if it is meant as text", line=node.start_mark.line + 1) from None


_STR_TAG = yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG
_MAPPING_TAG = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
_SEQUENCE_TAG = yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG


def _text(node: yaml.ScalarNode) -> str:
    value = str(node.value)
    if "\x00" in value:
        # Only reachable through an escape ("\0"); no path, name or value may hold one, and open()
        # would refuse it far from this line.
        raise ConfigError("a NUL character (\\0) in a value", line=node.start_mark.line + 1)
    return value


class _Builder:
    """Plain values from the composed node graph: LineDict for mappings, LineList for sequences, str for
    plain text, and PyYAML's safe constructors for every other tag (numbers, booleans, null, dates,
    !!set ...). Built directly rather than through PyYAML's generic constructor machinery, which costs
    a third of loading a 500-shop profile. An alias is built again where it is used (the expansion is
    bounded by _check_structure); an alias inside the collection it names is refused."""

    def __init__(self, loader: _LineLoader) -> None:
        self.loader = loader
        self.open: set[int] = set()          # the collections being built (an alias back to one loops)

    def value(self, node: yaml.Node) -> Any:
        kind = type(node)
        if isinstance(node, yaml.ScalarNode):
            return _text(node) if node.tag == _STR_TAG else self.loader.construct_object(node)
        if id(node) in self.open:
            raise ConfigError("an alias refers to the collection it stands in", line=node.start_mark.line + 1)
        if kind is yaml.MappingNode and node.tag == _MAPPING_TAG:
            return self._collection(node, self._mapping)
        if kind is yaml.SequenceNode and node.tag == _SEQUENCE_TAG:
            return self._collection(node, self._sequence)
        return self.loader.construct_object(node, deep=True)

    def _collection(self, node: yaml.Node, build: Any) -> Any:
        self.open.add(id(node))
        try:
            return build(node)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode) -> LineDict:
        self.loader.flatten_mapping(node)
        result = LineDict()
        result.line = node.start_mark.line + 1
        key_lines = result.key_lines
        for key_node, value_node in node.value:
            key = self.value(key_node)
            line = key_node.start_mark.line + 1
            if isinstance(key, list | dict):
                raise ConfigError("a list or mapping cannot be a key", line=line)
            if key in result:
                raise ConfigError(f"duplicate key {key!r}", line=line)
            result[key] = self.value(value_node)
            key_lines[key] = line
        return result

    def _sequence(self, node: yaml.SequenceNode) -> LineList:
        result = LineList(self.value(child) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


# The same values where PyYAML's own constructors build them (inside a !!set, !!omap or !!pairs).
_LineLoader.add_constructor(_MAPPING_TAG, lambda loader, node: _Builder(loader).value(node))
_LineLoader.add_constructor(_SEQUENCE_TAG, lambda loader, node: _Builder(loader).value(node))
_LineLoader.add_constructor(_STR_TAG, lambda loader, node: _text(node))


def _load(text: str) -> Any:
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _Builder(loader).value(node)
    finally:
        loader.dispose()


def _check_structure(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH and aliases expanding to more than MAX_ALIAS_EXPANSION
    values, in one pass over the parser's events (linear; the composer and constructor never see a
    bomb). Raises ConfigError with the line."""
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[None, 0]]          # [anchor, expanded size] per open collection
    own = 0
    added = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.ScalarEvent):
            own += 1
            stack[-1][1] += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            own += 1
            if len(stack) > MAX_DEPTH:
                raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", line=_line(event))
            stack.append([event.anchor, 1])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor:
                sizes[anchor] = size
            stack[-1][1] += size
        elif isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor or "", 1)
            added += size
            stack[-1][1] += size
            if added > MAX_ALIAS_EXPANSION + own:
                raise ConfigError(f"aliases (*{event.anchor}) expand to more than {MAX_ALIAS_EXPANSION} values "
                                  "(a YAML bomb?)", line=_line(event))


def _line(event: yaml.Event) -> int | None:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else None


def load_yaml_text(text: str, *, file: str) -> Any:
    """Parse YAML text into LineDict/LineList; errors become ConfigError with file and line."""
    try:
        _check_structure(text)
        return _load(text)
    except ConfigError as e:
        raise ConfigError(e.problem, file=file, line=e.line) from None
    except yaml.reader.ReaderError as e:
        # e.g. a control character: PyYAML gives a character position, not a line.
        what = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        raise ConfigError(f"not valid YAML: control character {what} is not allowed", file=file,
                          line=text.count("\n", 0, e.position) + 1) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"not valid YAML: {e.problem or e.context}", file=file, line=line) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", file=file) from e


def load_yaml_file(path: str | Path, kind: inputfile.InputKind = inputfile.PROFILE) -> Any:
    """Read (through the bounded reader) and parse a YAML file; unreadable files become ConfigError."""
    name = str(path)
    return load_yaml_text(inputfile.read_text(path, kind), file=name)


def line_of(container: Any, key: Any) -> int | None:
    """Line of `key` inside a LineDict/LineList, or of the container itself."""
    if isinstance(container, LineDict):
        return container.line_of(key)
    if isinstance(container, LineList) and isinstance(key, int):
        return container.line_of(key)
    return getattr(container, "line", None)
