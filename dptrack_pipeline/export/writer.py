"""How an export's JSON is written: streamed, atomically, one file or one per video.

:class:`JsonWriter` writes one COCO-style object as it goes: ``categories`` first, then each
annotation as it is made (so memory does not grow with the number of annotations), then
``images`` and ``info``, which are known only at the end (JSON object keys have no order).
:class:`JsonOutputs` owns the files: one, or with ``per_video`` one per video, a single file open
at a time; each is written to a temporary name and renamed when finished
(:func:`~dptrack_pipeline.shards.atomic.atomic_write`), and :meth:`JsonOutputs.abort` removes the
temporary file of an export that failed, so a half-written export never has the final name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TextIO

from dptrack_pipeline.shards.atomic import atomic_write
from dptrack_pipeline.structures import PERSON_CATEGORY

ImagesOf = Callable[[str | None], list[dict[str, Any]]]
"""``images(video)``: the ``images`` records of one file (``None``: the single file)."""
InfoOf = Callable[[str | None], dict[str, Any]]
"""``info(video)``: the ``info`` object of one file, asked for when the file is finished."""


class JsonWriter:
    """A COCO JSON object written as it goes: annotations streamed, images and info at the end."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._count = 0
        handle.write('{"categories": ' + json.dumps([PERSON_CATEGORY]) + ',\n"annotations": [\n')

    def annotation(self, ann: dict[str, Any]) -> None:
        self._handle.write((",\n" if self._count else "") + json.dumps(ann, allow_nan=False))
        self._count += 1

    def finish(self, images: list[dict[str, Any]], info: dict[str, Any]) -> None:
        self._handle.write('\n],\n"images": [\n')
        self._handle.write(",\n".join(json.dumps(i, allow_nan=False) for i in images))
        self._handle.write('\n],\n"info": ' + json.dumps(info, allow_nan=False, indent=1) + "}\n")


class JsonOutputs:
    """One JSON file, or one per video (posetrack ``per_video``: a video's rows are contiguous,
    as they sit in one shard sorted by video, so one file is open at a time)."""

    def __init__(self, out: str, per_video: bool, images: ImagesOf, info: InfoOf) -> None:
        self._out = out
        self._per_video = per_video
        self._images = images
        self._info = info
        self._current: tuple[str | None, Any, TextIO, JsonWriter] | None = None
        self._done: set[str | None] = set()
        self.paths: list[str] = []
        if per_video:
            os.makedirs(out, exist_ok=True)

    def _path(self, video: str | None) -> str:
        return os.path.join(self._out, f"{video}.json") if video else self._out

    def _start(self, video: str | None) -> JsonWriter:
        context = atomic_write(self._path(video))
        handle = open(context.__enter__(), "w", encoding="utf-8")
        self._current = (video, context, handle, JsonWriter(handle))
        return self._current[3]

    def write(self, video: str, ann: dict[str, Any]) -> None:
        key = video if self._per_video else None
        if self._current is None or self._current[0] != key:
            if key in self._done:
                raise ValueError(
                    f"the rows of video {video!r} are not contiguous in the shards (a damaged "
                    "folder: run writes each video's rows together in one shard)"
                )
            self.close()
            self._start(key)
        assert self._current is not None
        self._current[3].annotation(ann)

    def close(self) -> None:
        """Finish the open file (its ``images`` and ``info``) and publish it."""
        if self._current is None:
            return
        video, context, handle, writer = self._current
        self._current = None
        self._done.add(video)
        try:
            writer.finish(self._images(video), self._info(video))
            handle.close()
        except BaseException as err:
            handle.close()
            context.__exit__(type(err), err, err.__traceback__)
            raise
        context.__exit__(None, None, None)
        self.paths.append(self._path(video))

    def is_idle(self) -> bool:
        """Whether no file is open."""
        return self._current is None

    def open_empty(self) -> None:
        """Open the single output file even though nothing was written (an empty export)."""
        self._start(None)

    def abort(self) -> None:
        """Remove the open file's temporary file (an export that failed)."""
        if self._current is not None:
            _, context, handle, _ = self._current
            self._current = None
            handle.close()
            error = RuntimeError("export aborted")
            try:
                context.__exit__(RuntimeError, error, None)
            except RuntimeError:
                pass
