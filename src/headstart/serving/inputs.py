"""The items of a ``POST /predict`` request: JSON texts, or uploaded images saved as files.

Every problem is an HTTPException with a one-line message naming the item and what to send
instead: 413 for too many items, 415 for a body that is neither JSON nor multipart, 422 for
anything else (a text that is not a string or is empty, an upload that is not an image).
"""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from headstart.data.images import is_image_file, load_image
from headstart.errors import DataError
from headstart.serving.limits import Limits

JSON = "application/json"
MULTIPART = "multipart/form-data"


def body_kind(request: Request) -> str:
    """``"texts"`` for a JSON body, ``"images"`` for a multipart upload.

    Raises:
        HTTPException: 415 for any other content type.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == JSON:
        return "texts"
    if content_type == MULTIPART:
        return "images"
    raise HTTPException(415, f"content type '{content_type or 'none'}' is not accepted: send JSON "
                             '{"texts": [...]} for a text model, or multipart/form-data files for an image model')


def _too_many(count: int, limits: Limits) -> HTTPException:
    return HTTPException(413, f"{count} items in one request; send at most {limits.max_items} per request")


async def read_texts(request: Request, limits: Limits) -> list[str]:
    """The texts of a JSON body ``{"texts": ["...", ...]}``, checked against ``limits``."""
    try:
        payload = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
        raise HTTPException(422, 'the body is not JSON: send {"texts": ["a text", ...]}') from None
    texts = payload.get("texts") if isinstance(payload, dict) else None
    if not isinstance(texts, list) or not texts:
        raise HTTPException(422, 'field "texts" is missing or not a non-empty list: send {"texts": ["a text", ...]}')
    if len(texts) > limits.max_items:
        raise _too_many(len(texts), limits)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise HTTPException(422, f"texts[{index}] is a {_json_type(text)}, not a string")
        if not text.strip():
            raise HTTPException(422, f"texts[{index}] is empty: send text to classify, or leave the item out")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # JSON allows a lone surrogate (\ud800), which no tokenizer takes
            raise HTTPException(422, f"texts[{index}] holds an unpaired surrogate escape; send valid Unicode "
                                     "(UTF-8)") from None
        if len(text) > limits.max_text_chars:
            raise HTTPException(422, f"texts[{index}] has {len(text)} characters; send at most "
                                     f"{limits.max_text_chars} (the model reads only the beginning)")
    return texts


def _json_type(value) -> str:
    names = {bool: "boolean", int: "number", float: "number", dict: "object", list: "list", type(None): "null"}
    return names.get(type(value), type(value).__name__)


async def save_images(request: Request, limits: Limits, folder: Path) -> list[str]:
    """Save the uploaded files of a multipart body into ``folder``, each checked to be a readable image.

    Returns:
        The saved files' paths, in upload order.
    """
    # one more than allowed, so that a request over the limit gets this module's message
    form = await request.form(max_files=limits.max_items + 1, max_fields=limits.max_items + 1)
    uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not uploads:
        raise HTTPException(422, "no files in the upload: send each image as a file field "
                                 "(curl -F images=@photo.jpg ...)")
    if len(uploads) > limits.max_items:
        raise _too_many(len(uploads), limits)
    paths = []
    for index, upload in enumerate(uploads):
        suffix = Path(upload.filename or "").suffix.lower()
        path = folder / f"{index:03d}{suffix if is_image_file(f'x{suffix}') else '.img'}"
        path.write_bytes(await upload.read())
        try:  # decoded here, so a corrupt file is this request's 422, not a failed batch
            await run_in_threadpool(load_image, path)
        except DataError as error:
            name = f" ({upload.filename})" if upload.filename else ""
            raise HTTPException(422, f"file {index}{name} is not a readable image ({error.message}); "
                                     "send PNG, JPEG or another image format") from None
        paths.append(str(path))
    return paths
