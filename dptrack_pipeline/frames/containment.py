"""Does a path stay inside its root? :func:`escape`, the one check every input path passes.

Datasets arrive from strangers: an annotation ``file_name`` of ``../../home/u/photo.png``, an
absolute ``/etc/x.png``, or a symlink inside the frame folder that points elsewhere would make the
pipeline read pixels from anywhere on the machine into its shards. So every path that comes *from
data* (annotation file names, the ``<folder>.mp4`` fallback, the entries of a ``pairs --videos``
folder, the images of a frame folder) is checked against the root it belongs to before it is
opened, and a path that leaves it becomes a ``path_outside_root`` reject. Paths a user types on
the command line (``--frames-root``, ``--videos``, ``--people``, ``--checkpoint``) are roots
themselves and trusted.

Rules (:func:`escape`):

1. **Lexical**: ``root/path``, normalised (``..`` folded, an absolute ``path`` kept as is), must
   lie under the normalised ``root``. This is decided without touching the disk.
2. **Symlinks** (unless ``follow_symlinks``): the real path of ``root/path`` (every link
   resolved, :func:`os.path.realpath`) must lie under the real path of ``root``. A link that
   stays inside the root is fine; one that leaves it is refused. ``follow_symlinks=True``
   (``--follow-symlinks``) skips this rule, for frame folders that are symlink farms.

The check is pure path arithmetic plus ``realpath``'s ``lstat`` calls: nothing is opened.
Written here because the standard library has the parts (``os.path.realpath``,
``os.path.commonpath``) but not the rule, and ``pathlib.Path.is_relative_to`` is lexical only.
"""

from __future__ import annotations

import os


def _under(root: str, path: str) -> bool:
    try:
        return os.path.commonpath([root, path]) == root
    except ValueError:  # different drives (Windows) or a mix of absolute and relative
        return False


def escape(root: str, path: str, *, follow_symlinks: bool = False) -> str | None:
    """Why ``path`` (relative to ``root``, or absolute) leaves ``root``, or ``None`` if it stays.

    Args:
        root: the folder the path must stay in (a local path).
        path: a path from data: relative to ``root`` (``"a/b.jpg"``) or absolute.
        follow_symlinks: do not apply the symlink rule (see the module docstring).

    Returns:
        ``None`` when the path is inside; otherwise a sentence for a reject's ``detail``.
    """
    base = os.path.normpath(os.path.abspath(root))
    full = os.path.normpath(os.path.join(base, path))
    if not _under(base, full):
        kind = "an absolute path" if os.path.isabs(path) else "a path with '..'"
        return f"{path!r} is {kind} that leaves {root}"
    if follow_symlinks:
        return None
    real = os.path.realpath(full)
    if not _under(os.path.realpath(base), real):
        return (
            f"{path!r} is a symlink (or under one) to {real}, outside {root}; pass "
            "--follow-symlinks if the frame folders are symlink farms you trust"
        )
    return None
