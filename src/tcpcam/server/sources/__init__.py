"""Frame sources for the server, chosen by a spec string.

Built in: ``hello``, ``jpeg:PATH``, ``dir:PATH``, ``pattern[:SIZE]`` and
``replay:PATH``. Other packages add sources through the entry-point group
``tcpcam.server.sources``: the entry point's name is the spec's name and its object
a callable ``(argument, reactor) -> IFrameSource``, where ``argument`` is the
text after the first colon (``""`` if none).
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from tcpcam.server.sources.base import FrameUnavailable, IFrameSource, SourceSpecError

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

__all__ = ["DEFAULT_SPEC", "ENTRY_POINT_GROUP", "FrameUnavailable", "IFrameSource", "SourceSpecError",
           "builtinSources", "sourceFromSpec"]

#: The source used when none is named.
DEFAULT_SPEC = "pattern"
#: Entry-point group searched for sources that are not built in.
ENTRY_POINT_GROUP = "tcpcam.server.sources"


def _hello(argument: str, reactor: IReactorTime | None) -> IFrameSource:
    from tcpcam.server.sources.files import HelloSource

    if argument:
        raise SourceSpecError("hello source takes no argument, not %r" % (argument,))
    return HelloSource()


def _needPath(name: str, argument: str) -> str:
    if not argument:
        raise SourceSpecError("%s source needs a path, as in %s:PATH" % (name, name))
    return argument


def _jpeg(argument: str, reactor: IReactorTime | None) -> IFrameSource:
    from tcpcam.server.sources.files import JpegFileSource

    return JpegFileSource(_needPath("jpeg", argument))


def _dir(argument: str, reactor: IReactorTime | None) -> IFrameSource:
    from tcpcam.server.sources.files import DirectorySource

    return DirectorySource(_needPath("dir", argument))


def _pattern(argument: str, reactor: IReactorTime | None) -> IFrameSource:
    from tcpcam.server.sources.pattern import PatternSource, parseSize

    return PatternSource(parseSize(argument))


def _replay(argument: str, reactor: IReactorTime | None) -> IFrameSource:
    from tcpcam.server.sources.replay import ReplaySource, SegmentReplaySource, segmentFolder

    path = _needPath("replay", argument)
    segments = segmentFolder(path)
    if segments is not None:
        return SegmentReplaySource(segments[0], segments[1], reactor)
    return ReplaySource(path, reactor)


_BUILTIN = {
    "hello": (_hello, "hello"),
    "jpeg": (_jpeg, "jpeg:PATH"),
    "dir": (_dir, "dir:PATH"),
    "pattern": (_pattern, "pattern[:WIDTHxHEIGHT|VGA|...]"),
    "replay": (_replay, "replay:PATH"),
}


def builtinSources() -> list[str]:
    """The built-in specs' usage forms, such as ``jpeg:PATH``."""
    return [usage for _, usage in _BUILTIN.values()]


def _entryPoints() -> list[metadata.EntryPoint]:
    try:
        return list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # noqa: BLE001 - broken metadata must not stop the built-in sources
        return []


def sourceFromSpec(spec: str | None, reactor: IReactorTime | None = None) -> IFrameSource:
    """Build the :class:`IFrameSource` named by ``spec``, such as ``"dir:/srv/pictures"``.

    ``reactor`` is handed to sources that need a clock (default: the global
    reactor, imported only when first needed). Raises
    :class:`SourceSpecError` with a one-line message for a bad spec.
    """
    name, _, argument = (spec or DEFAULT_SPEC).partition(":")
    name = name.strip().lower()
    builtin = _BUILTIN.get(name)
    if builtin is not None:
        return builtin[0](argument, reactor)
    for entryPoint in _entryPoints():
        if entryPoint.name == name:
            return _fromEntryPoint(entryPoint, argument, reactor)
    installed = sorted({entryPoint.name for entryPoint in _entryPoints()} - set(_BUILTIN))
    raise SourceSpecError(
        "unknown frame source %r: expected %s%s"
        % (name, ", ".join(builtinSources()), "".join(", " + other for other in installed)))


def _fromEntryPoint(entryPoint: metadata.EntryPoint, argument: str, reactor: IReactorTime | None) -> IFrameSource:
    try:
        factory = entryPoint.load()
    except Exception as error:  # noqa: BLE001 - any import error becomes one line
        raise SourceSpecError("frame source %r cannot be loaded: %s" % (entryPoint.name, error)) from None
    source = factory(argument, reactor)
    if not IFrameSource.providedBy(source) and not callable(getattr(source, "nextFrame", None)):
        raise SourceSpecError("frame source %r made %r, which has no nextFrame()" % (entryPoint.name, source))
    return source
