"""The `/sdapi/v1` routes AUTOMATIC1111's clients call (Open WebUI, SillyTavern, bots, plugins), served
next to the page by the same server, with A1111's request and response shapes.

Access: with credentials (`--api-auth user:pass[,user2:pass2]`, else the page's `--auth`) every route
but `/internal/ping` takes HTTP Basic, and a wrong or missing one gets A1111's 401. Without them the
API answers only a studio nobody else can reach; a shared one (`--share`, another `--host`) answers
403 saying which flag to add. `--no-api` leaves the routes out (404).

Errors: a bad value is a 422 in FastAPI's shape naming the field (`{"detail": [{"loc": ["body",
"steps"], "msg": ..., "type": "value_error"}]}`); anything else is A1111's `{"error", "detail", "body",
"errors"}` body; the server keeps serving either way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import threading
from typing import Any, Callable, Mapping

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from ... import embeddings, hardware, loras, styles
from ...upscalers import models as upscaler_models
from ...errors import InvalidValue, StudioError
from ...fields import TABLE
from ...infotext import parse_infotext
from ...metadata import PARAMETERS_KEY, REQUEST_KEY
from ..visitors import is_loopback
from . import controlnet, translate, units
from .body import BodyError, read_body
from .calls import LATENT_MODES, Busy, SdApi

log = logging.getLogger("studio")
ANONYMOUS = "anonymous"
TRUE = ("1", "true", "yes", "on")  # a query flag as FastAPI reads a bool
HANG_UP_POLL_S = 0.25  # how often a generation call looks whether its caller is still there


def a1111_error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "body": "", "errors": detail}, status_code=status)


def invalid(exc: InvalidValue, body: Any = None) -> JSONResponse:
    """A1111's 422, its `loc` the key the caller sent (a ControlNet unit's field by its place in args)."""
    field = units.a1111_field(str(getattr(exc, "field", "body")), body)
    return JSONResponse({"detail": [{"loc": ["body", *field.split(".")], "msg": str(exc), "type": "value_error"}]},
                        status_code=422)


def caller_of(request: Request, credentials: Mapping[str, str] | None) -> str | JSONResponse:
    """The caller's name, or the 401 A1111 answers."""
    if credentials is None:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return _unauthorized("Not authenticated")
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return _unauthorized("Invalid authentication credentials")
    expected = credentials.get(user)
    if not sep or expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
        return _unauthorized("Incorrect username or password")
    return user


def _unauthorized(detail: str) -> JSONResponse:
    response = a1111_error(401, "HTTPException", detail)
    response.headers["WWW-Authenticate"] = "Basic"
    return response


def png_info(image_b64: Any) -> dict[str, Any]:
    """POST /png-info: the infotext, the other text chunks, and the parameters as A1111 parses them."""
    picture = translate.decode_image("image", image_b64)
    items = {k: v for k, v in picture.info.items() if isinstance(k, str) and isinstance(v, str)}
    text = items.pop(PARAMETERS_KEY, "") or ""
    items.pop(REQUEST_KEY, None)
    parsed = parse_infotext(text)
    params: dict[str, Any] = {"Prompt": parsed.prompt, "Negative prompt": parsed.negative_prompt, **parsed.params}
    if "Size" in params and "x" in params["Size"]:
        params["Size-1"], params["Size-2"] = params["Size"].split("x", 1)
    return {"info": text, "items": items, "parameters": params}


def served_at(request: Request) -> dict[str, Any]:
    """The host, port and share link the page was launched with (Gradio keeps them on its Blocks);
    empty when the routes are served without Gradio's launch (tests' own FastAPI apps)."""
    get_blocks = getattr(request.app, "get_blocks", None)
    blocks = get_blocks() if callable(get_blocks) else None
    host = getattr(blocks, "server_name", None)
    if not isinstance(host, str):
        return {}
    return {"host": host, "port": getattr(blocks, "server_port", None), "share": bool(getattr(blocks, "share", False))}


def cmd_flags(config: Any, credentials: Mapping[str, str] | None, refusal: str | None,
              served: Mapping[str, Any]) -> dict[str, Any]:
    """GET /cmd-flags: this server's settings under A1111's flag names. Never a password (A1111 shows
    --api-auth as given; here its users alone); a studio others reach names none of its folders (its
    messages never do either)."""
    listen = not is_loopback(served.get("host", "127.0.0.1"))
    shared = listen or bool(served.get("share")) or config.allowed_roots is not None or refusal is not None
    folder = (lambda path: None if shared or path is None else str(path))
    return {"api": True, "nowebui": False, "api_auth": ",".join(f"{user}:***" for user in credentials)
            if credentials else None, "listen": listen,
            "server_name": served.get("host"), "port": served.get("port"), "share": bool(served.get("share")),
            "ckpt_dir": folder(config.models_dir), "lora_dir": folder(config.loras_dir),
            "controlnet_dir": folder(config.controlnets_dir), "disable_safe_unpickle": config.allow_pickle,
            "medvram": config.offload == "model", "lowvram": config.offload == "sequential",
            "no_half": config.dtype == "fp32", "use_cpu": ["all"] if config.device == "cpu" else [],
            "device_id": config.device.partition(":")[2] or None}


def memory(engine: Any) -> dict[str, Any]:
    """A1111's answer for this process's machine; on a Ray cluster also each replica's, as it last
    reported them (`replicas`: its name, device, hardware, host and when), since the GPUs are there."""
    body = hardware.memory()
    replicas = [card for card in engine.devices() if card.replica]
    if replicas:
        if "system" not in body["cuda"] and any("system" in card.memory.get("cuda", {}) for card in replicas):
            body["cuda"] = {"error": "the GPUs are on the cluster's replicas: see \"replicas\""}
        body["replicas"] = [{"replica": card.replica, "host": card.host, "pid": card.pid, "device": card.device,
                             "hardware": card.hardware, "reported_at": card.at, **card.memory} for card in replicas]
    return body


async def watched(call: Callable[[], Any], request: Request) -> Any:
    """`call` in the threadpool, its caller watched: a caller that hangs up sets `request.state.hung_up`,
    which stops that call's run (calls.SdApi.generate) and no other; the call's answer is then dropped."""
    hung_up = request.state.hung_up = threading.Event()
    task = asyncio.ensure_future(run_in_threadpool(call))
    while not task.done():
        await asyncio.wait({task}, timeout=HANG_UP_POLL_S)
        if not task.done() and not hung_up.is_set() and await request.is_disconnected():
            log.info("sdapi: the caller hung up; its run stops")
            hung_up.set()
    return task.result()


def build_router(api: SdApi, credentials: Mapping[str, str] | None, refusal: str | None = None) -> APIRouter:
    """The routes. `credentials`: user -> password (None: no auth); `refusal`: why this studio does
    not serve the API (a shared one without credentials), answered as 403 by every route."""
    router = APIRouter()
    config = api.service.config

    def route(path: str, method: str = "GET", threaded: bool = False, hang_up: bool = False) -> Callable:
        """`hang_up`: the call's run stops when its caller disconnects (`request.state.hung_up` is set)."""
        def wrap(fn: Callable[..., Any]) -> Callable:
            async def endpoint(request: Request) -> Any:
                if refusal is not None:
                    return a1111_error(403, "Forbidden", refusal)
                caller = caller_of(request, credentials)
                if isinstance(caller, JSONResponse):
                    return caller
                body: Any = None
                if method == "POST":
                    try:
                        body = await read_body(request)
                    except BodyError as exc:
                        return exc.response
                try:
                    call = (lambda: fn(caller, body, request))
                    if hang_up:
                        result = await watched(call, request)
                    else:
                        result = await run_in_threadpool(call) if threaded else call()
                except InvalidValue as exc:
                    return invalid(exc, body)
                except Busy as exc:
                    return a1111_error(429, "Busy", str(exc))
                except StudioError as exc:
                    return a1111_error(500, type(exc).__name__, str(exc))
                except Exception as exc:  # keep serving; the message names what failed
                    log.exception("sdapi %s failed", path)
                    return a1111_error(500, type(exc).__name__, f"{type(exc).__name__}: {exc}")
                return result if isinstance(result, JSONResponse) else JSONResponse(result)

            router.add_api_route(path, endpoint, methods=[method], include_in_schema=False)
            return fn
        return wrap

    @route("/sdapi/v1/txt2img", "POST", hang_up=True)
    def txt2img(caller: str, body: Any, request: Request) -> Any:
        return api.generate(caller, body, "txt2img", request.state.hung_up)

    @route("/sdapi/v1/img2img", "POST", hang_up=True)
    def img2img(caller: str, body: Any, request: Request) -> Any:
        return api.generate(caller, body, "img2img", request.state.hung_up)

    @route("/sdapi/v1/progress")
    def progress(caller: str, body: Any, request: Request) -> Any:
        skip = request.query_params.get("skip_current_image", "false").lower() in ("1", "true", "yes")
        return api.progress(caller, skip)

    @route("/sdapi/v1/interrupt", "POST")
    def interrupt(caller: str, body: Any, request: Request) -> Any:
        api.interrupt(caller)
        return {}

    @route("/sdapi/v1/skip", "POST")
    def skip(caller: str, body: Any, request: Request) -> Any:
        api.skip(caller)
        return None

    @route("/sdapi/v1/options")
    def get_options(caller: str, body: Any, request: Request) -> Any:
        return api.options(caller)

    @route("/sdapi/v1/options", "POST", threaded=True)
    def set_options(caller: str, body: Any, request: Request) -> Any:
        api.set_options(caller, body)
        return None

    @route("/sdapi/v1/cmd-flags")
    def cmd_flags_route(caller: str, body: Any, request: Request) -> Any:
        return cmd_flags(config, credentials, refusal, served_at(request))

    @route("/sdapi/v1/sd-models", threaded=True)
    def sd_models(caller: str, body: Any, request: Request) -> Any:
        return api.sd_models()

    @route("/sdapi/v1/samplers")
    def sampler_list(caller: str, body: Any, request: Request) -> Any:
        return translate.sampler_items()

    @route("/sdapi/v1/schedulers")
    def scheduler_list(caller: str, body: Any, request: Request) -> Any:
        return translate.schedule_items()

    @route("/sdapi/v1/upscalers")
    def upscalers(caller: str, body: Any, request: Request) -> Any:
        # Pixel filters have no scale of their own; a model of the upscalers folder has its detected one,
        # under A1111's name where it has one (R-ESRGAN 4x+), with its file's name (never its full path).
        # Any other name a client sends runs as the nearest of these, said in the answer (translate, extras).
        config = api.service.config
        models = dict(upscaler_models.listed(config.upscalers_dir, config.allow_pickle))
        return [{"name": n, "model_name": models[n].architecture if n in models else None,
                 "model_path": models[n].path.name if n in models else None, "model_url": None,
                 "scale": models[n].scale if n in models else None} for n in upscaler_models.a1111_list(config)]

    @route("/sdapi/v1/latent-upscale-modes")
    def latent_modes(caller: str, body: Any, request: Request) -> Any:
        return [{"name": n} for n in TABLE["hires_upscaler"].choice_list() if n in LATENT_MODES]

    @route("/sdapi/v1/sd-vae")
    def sd_vae(caller: str, body: Any, request: Request) -> Any:
        return []

    @route("/sdapi/v1/loras", threaded=True)
    def lora_list(caller: str, body: Any, request: Request) -> Any:
        return [{"name": name, "alias": name, "path": str(path), "metadata": {}}
                for name, path in loras.folder_loras(config.loras_dir).items()]

    @route("/sdapi/v1/prompt-styles")
    def prompt_styles(caller: str, body: Any, request: Request) -> Any:
        return [{"name": s.name, "prompt": s.prompt, "negative_prompt": s.negative_prompt}
                for s in styles.styles().values()]

    @route("/sdapi/v1/embeddings", threaded=True)
    def embedding_list(caller: str, body: Any, request: Request) -> Any:
        # Loaded or skipped as the vector width of the model used last fits (A1111's current model).
        return embeddings.listing(config.embeddings_dir, config.allow_pickle)

    for path, empty in (("/sdapi/v1/hypernetworks", []),
                        ("/sdapi/v1/face-restorers", []), ("/sdapi/v1/realesrgan-models", []),
                        # The scripts it runs by script_name (studio/web/sdapi/scripts.py), then the always-on
                        # ones it reads, as A1111 lists them (clients look for "adetailer").
                        ("/sdapi/v1/scripts", {"txt2img": ["x/y/z plot", "controlnet", "adetailer"],
                                               "img2img": ["poor man's outpainting", "sd upscale", "x/y/z plot",
                                                           "controlnet", "adetailer"]})):
        route(path)(lambda caller, body, request, empty=empty: empty)
    for path in ("/sdapi/v1/refresh-checkpoints", "/sdapi/v1/refresh-loras", "/sdapi/v1/refresh-vae"):
        route(path, "POST")(lambda caller, body, request: None)  # folders are read on every call

    @route("/sdapi/v1/png-info", "POST")
    def png_info_route(caller: str, body: Any, request: Request) -> Any:
        if not isinstance(body, Mapping):
            raise InvalidValue("body", type(body).__name__, '{"image": base64 PNG}')
        return png_info(body.get("image"))

    @route("/sdapi/v1/extra-single-image", "POST", threaded=True, hang_up=True)
    def extra_single(caller: str, body: Any, request: Request) -> Any:
        return api.extras(caller, body, False, request.state.hung_up)

    @route("/sdapi/v1/extra-batch-images", "POST", threaded=True, hang_up=True)
    def extra_batch(caller: str, body: Any, request: Request) -> Any:
        return api.extras(caller, body, True, request.state.hung_up)

    @route("/sdapi/v1/interrogate", "POST")
    def interrogate(caller: str, body: Any, request: Request) -> Any:
        # A1111 captions with CLIP or DeepBooru models the studio does not carry: said, not faked.
        return a1111_error(501, "NotImplemented", "Interrogate (CLIP / DeepBooru captions) is not available in "
                           "this studio: it has no captioning model. Write the prompt by hand, or read a PNG's "
                           "own prompt with /sdapi/v1/png-info.")

    @route("/sdapi/v1/memory", threaded=True)
    def memory_route(caller: str, body: Any, request: Request) -> Any:
        return memory(api.service.engine)

    # sd-webui-controlnet's routes (studio/web/sdapi/controlnet.py)
    @route("/controlnet/version")
    def controlnet_version(caller: str, body: Any, request: Request) -> Any:
        return {"version": controlnet.API_VERSION}

    @route("/controlnet/model_list", threaded=True)
    def controlnet_models(caller: str, body: Any, request: Request) -> Any:
        return {"model_list": controlnet.model_list(config)}  # `update` changes nothing: read on every call

    @route("/controlnet/module_list")
    def controlnet_modules(caller: str, body: Any, request: Request) -> Any:
        return controlnet.module_list(request.query_params.get("alias_names", "false").lower() in TRUE)

    @route("/controlnet/settings")
    def controlnet_settings(caller: str, body: Any, request: Request) -> Any:
        return {"control_net_unit_count": controlnet.MAX_UNITS}

    @route("/controlnet/detect", "POST", threaded=True)
    def controlnet_detect(caller: str, body: Any, request: Request) -> Any:
        return controlnet.detect(body)

    async def ping() -> Any:  # A1111 leaves it open: clients check the server is up
        return {}

    router.add_api_route("/internal/ping", ping, methods=["GET"], include_in_schema=False)
    return router


def parse_credentials(text: str | None) -> dict[str, str] | None:
    """`user:pass[,user2:pass2]` (A1111's --api-auth) -> user -> password."""
    if not text:
        return None
    pairs = {}
    for item in text.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise InvalidValue("--api-auth", item, "user:password[,user2:password2]")
        pairs[user] = password
    return pairs

