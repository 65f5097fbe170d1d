"""The dashboard's HTTP routes: pages, live fragments, per-attempt logs and static files.

Why here and not in the API server: the dashboard is a client of the API like kubectl is;
it reads through the same :class:`~joblet.client.interface.Client` and the log store, and
its JavaScript writes through the Kubernetes endpoints themselves. Routes live only at
``/`` (HTML requests only; anything else falls through to the API) and under ``/ui``, so no
Kubernetes path is shadowed. With a bearer token configured the dashboard asks for it once
(``/ui?token=...``), keeps it in a cookie, and hands it to its script for API calls.
"""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from joblet.client.interface import Client
from joblet.clock import Clock
from joblet.dashboard import history, pages
from joblet.dashboard.timeline import job_timeline
from joblet.errors import ApiError, NotFound

Obj = dict[str, Any]
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
COOKIE = "joblet_token"


class Dashboard:
    def __init__(self, client: Client, log_store: Any, clock: Clock, token: str | None) -> None:
        self.client = client
        self.log_store = log_store
        self.clock = clock
        self.token = token

    # -- auth ---------------------------------------------------------------------------------

    def presented_token(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.query_params.get("token") or request.cookies.get(COOKIE)

    def authorized(self, request: Request) -> bool:
        if self.token is None:
            return True
        given = self.presented_token(request) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def guard(self, request: Request) -> Response | None:
        if self.authorized(request):
            if self.token is not None and request.query_params.get("token"):
                response = RedirectResponse(request.url.path, status_code=303)
                response.set_cookie(COOKIE, self.token, httponly=False, samesite="strict")
                return response
            return None
        return HTMLResponse(pages.layout("Sign in", '<p>This server needs a token: open <code>/ui?token=TOKEN</code>'
                                                    " (the token of <code>joblet server --token</code>).</p>"), 401)

    # -- data ---------------------------------------------------------------------------------------

    async def job_view(self, namespace: str, name: str) -> tuple[Obj | None, Any, list[Obj]]:
        now = self.clock.now()
        try:
            job: Obj | None = await self.client.get("jobs", name, namespace)
        except NotFound:
            job = None
        if job is not None:
            uid = str((job.get("metadata") or {}).get("uid") or "")
            selector = f"batch.kubernetes.io/controller-uid={uid}"
        else:
            selector = f"batch.kubernetes.io/job-name={name}"
        pods = (await self.client.list("pods", namespace, label_selector=selector)).items
        pod_names = [str(p["metadata"]["name"]) for p in pods]
        attempts = []
        root = getattr(self.log_store, "root", None)
        if root is not None:
            attempts = history.job_attempts(Path(root), namespace, name, pod_names)
        tl = job_timeline(job or {"metadata": {"name": name, "namespace": namespace}}, pods, attempts, now)
        involved = {name, *pod_names}
        events = [e for e in (await self.client.list("events", namespace)).items
                  if (e.get("involvedObject") or {}).get("name") in involved
                  and (e.get("involvedObject") or {}).get("kind") in ("Job", "Pod")]
        return job, tl, events

    # -- handlers ---------------------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return RedirectResponse("/ui", status_code=307)

    async def index(self, request: Request) -> Response:
        if (denied := self.guard(request)) is not None:
            return denied
        jobs = (await self.client.list("jobs")).items
        cronjobs = (await self.client.list("cronjobs")).items
        return HTMLResponse(pages.list_page(jobs, cronjobs, self.clock.now(), self.token))

    async def jobs_partial(self, request: Request) -> Response:
        if not self.authorized(request):
            return PlainTextResponse("Unauthorized", 401)
        jobs = (await self.client.list("jobs")).items
        cronjobs = (await self.client.list("cronjobs")).items
        return HTMLResponse(pages.jobs_fragment(jobs, cronjobs, self.clock.now()))

    async def job(self, request: Request) -> Response:
        if (denied := self.guard(request)) is not None:
            return denied
        ns, name = request.path_params["namespace"], request.path_params["name"]
        job, tl, events = await self.job_view(ns, name)
        if job is None and not tl.rows:
            return HTMLResponse(pages.layout("Not found", f"<p>No Job {pages.esc(ns)}/{pages.esc(name)}.</p>"), 404)
        return HTMLResponse(pages.job_page(ns, name, job, tl, events, self.clock.now(), self.token))

    async def job_partial(self, request: Request) -> Response:
        if not self.authorized(request):
            return PlainTextResponse("Unauthorized", 401)
        ns, name = request.path_params["namespace"], request.path_params["name"]
        job, tl, events = await self.job_view(ns, name)
        return HTMLResponse(pages.job_fragment(ns, name, job, tl, events, self.clock.now()))

    async def attempt_log(self, request: Request) -> Response:
        """One attempt's log from the log store (any attempt; also of deleted pods)."""
        if not self.authorized(request):
            return PlainTextResponse("Unauthorized", 401)
        root = getattr(self.log_store, "root", None)
        if root is None:
            return PlainTextResponse("no log store", 404)
        ns, pod = request.path_params["namespace"], request.path_params["pod"]
        qp = request.query_params
        attempts = history.pod_attempts(Path(root), ns, pod)
        uid, container, number = qp.get("uid") or "", qp.get("container") or "", qp.get("attempt") or ""
        chosen = [a for a in attempts if (not uid or a.uid == uid) and (not container or a.container == container)
                  and (not number.isdigit() or a.number == int(number))]
        if not chosen:
            return PlainTextResponse(f"no logs for pod {pod}", 404)
        path = chosen[-1].path  # up to --container-log-max-size x files: read it off the event loop
        text = await asyncio.to_thread(lambda: "\n".join(history.read_attempt(path)))
        return PlainTextResponse(text + ("\n" if text else ""))

    async def static(self, request: Request) -> Response:
        name = request.path_params["file"]
        if name not in STATIC_FILES:
            return PlainTextResponse("not found", 404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def dashboard_routes(client: Client, *, log_store: Any, clock: Clock, token: str | None,
                     fallback: Any = None) -> list[BaseRoute]:
    """Routes for ``/`` (browsers only; other clients get ``fallback``) and ``/ui/...``."""
    d = Dashboard(client, log_store, clock, token)

    async def root(request: Request) -> Response:
        if wants_html(request) or fallback is None:
            return await d.root(request)
        response: Response = await fallback(request)
        return response

    async def guarded(request: Request) -> Response:
        try:
            return await d.index(request)
        except ApiError as err:
            return PlainTextResponse(err.message, err.code)

    return [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/ui", guarded, methods=["GET", "HEAD"]),
        Route("/ui/", guarded, methods=["GET", "HEAD"]),
        Route("/ui/static/{file}", d.static, methods=["GET", "HEAD"]),
        Route("/ui/partials/jobs", d.jobs_partial, methods=["GET"]),
        Route("/ui/partials/jobs/{namespace}/{name}", d.job_partial, methods=["GET"]),
        Route("/ui/jobs/{namespace}/{name}", d.job, methods=["GET", "HEAD"]),
        Route("/ui/logs/{namespace}/{pod}", d.attempt_log, methods=["GET"]),
    ]


def job_url(base: str, namespace: str, name: str) -> str:
    return f"{base.rstrip('/')}/ui/jobs/{quote(namespace, safe='')}/{quote(name, safe='')}"
