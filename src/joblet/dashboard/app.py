"""The dashboard's HTTP routes: login, pages, live fragments, logs, actions and static files.

Why here and not in the API server: the dashboard is a client of the API like kubectl is;
it reads and writes through the same :class:`~joblet.client.interface.Client` and the log
store, as the signed-in user: every read and action is put to the
:class:`joblet.auth.Authorizer` with the session's user first. Routes live only at ``/``
(HTML requests only; anything else falls through to the API) and under ``/ui``, so no
Kubernetes path is shadowed, and the page's script calls only ``/ui`` routes (the API never
accepts cookies). Sessions, CSRF and the security headers are :mod:`joblet.dashboard.session`.

One module (~530 lines): the routes of one small web app and their shared session handling;
the HTML lives in dashboard/pages.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Route

from joblet.api.validation.meta import is_dns1123_label, is_dns1123_subdomain
from joblet.auth import Attributes, Authenticator, Authorizer, Credentials
from joblet.client.interface import Client
from joblet.clock import Clock
from joblet.controllers import alerts
from joblet.controllers.cronjob.schedule import (
    cronjob_schedule,
    cronjob_zone,
    format_rfc3339_in,
    manual_job,
    next_times,
)
from joblet.controllers.job.backoff import retry_at
from joblet.controllers.job.config import JobControllerConfig
from joblet.dashboard import history, pages
from joblet.dashboard.session import (
    CSRF_HEADER,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    SessionStore,
    add_security_headers,
    clear_cookie,
    csrf_ok,
    same_origin,
    set_session_cookie,
)
from joblet.dashboard.timeline import job_timeline
from joblet.errors import ApiError, Forbidden, NotFound

Obj = dict[str, Any]
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
GROUPS = {"jobs": "batch", "cronjobs": "batch", "pods": "", "events": ""}
#: log lines of each failed container shown in the Failures box
TAIL_LINES = 5
MAX_FAILURES = 10
MAX_LOGIN_BODY = 16 * 1024
Kind = Literal["page", "data", "action"]
Handler = Callable[[Request, Session], Awaitable[Response]]


def check_names(namespace: str, name: str) -> None:
    """404 for path segments no object can be named (SEC-19: ``%00``, spaces, ...)."""
    bad = is_dns1123_label(namespace) or is_dns1123_subdomain(name) or "\n" in namespace + name
    if bad:
        raise NotFound(f'no object can be named "{namespace}/{name}"')


def safe_next(path: str | None) -> str:
    """Where to go after login: only a dashboard path on this server."""
    if not path or not path.startswith("/ui") or path.startswith("//") or any(c in path for c in "\\\r\n\t"):
        return "/ui"
    return path


class Dashboard:
    def __init__(self, client: Client, log_store: Any, clock: Clock, authenticator: Authenticator,
                 authorizer: Authorizer, secure_cookies: bool, pod_failure_backoff: tuple[float, float]) -> None:
        self.client = client
        self.log_store = log_store
        self.clock = clock
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.secure = secure_cookies
        self.backoff = pod_failure_backoff
        self.sessions = SessionStore(clock)

    # -- sessions, authorization ----------------------------------------------------------------------

    def secure_for(self, request: Request) -> bool:
        """Secure cookies when configured and whenever the request came over HTTPS."""
        return self.secure or request.url.scheme == "https"

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def login_form(self, request: Request, next_path: str, error: str = "", status: int = 401) -> Response:
        nonce = self.sessions.new_login_nonce()
        response = HTMLResponse(pages.login_page(self.sessions.login_csrf(nonce), next_path, error), status)
        set_session_cookie(response, LOGIN_COOKIE, nonce, secure=self.secure_for(request), max_age=3600)
        return response

    async def authorize(self, session: Session, verb: str, resource: str, namespace: str = "", name: str = "",
                        subresource: str = "") -> bool:
        group = GROUPS[resource]
        path = ("/apis/batch/v1" if group else "/api/v1") + (f"/namespaces/{namespace}" if namespace else "")
        path += f"/{resource}" + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")
        decision = await self.authorizer.authorize(Attributes(
            user=session.user, verb=verb, resource_request=True, namespace=namespace, api_group=group,
            api_version="v1", resource=resource, subresource=subresource, name=name, path=path))
        return decision.allowed

    async def require(self, session: Session, verb: str, resource: str, namespace: str = "", name: str = "",
                      subresource: str = "") -> None:
        if not await self.authorize(session, verb, resource, namespace, name, subresource):
            what = f"{resource}/{subresource}" if subresource else resource
            group = GROUPS[resource]
            scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            raise Forbidden(f'{what}{"." + group if group else ""}{f" {name!r}" if name else ""} is forbidden: '
                            f'User "{session.user.name}" cannot {verb} resource "{what}" in API group '
                            f'"{group}"{scope}')

    def endpoint(self, handler: Handler, kind: Kind) -> Callable[[Request], Awaitable[Response]]:
        """A route: session (login form for pages, 401 otherwise), CSRF for actions, errors as
        4xx pages or text (never a 500 for bad input), security headers on every answer."""

        async def handle(request: Request) -> Response:
            session = self.session(request)
            response: Response
            try:
                if session is None:
                    response = (self.login_form(request, safe_next(request.url.path)) if kind == "page"
                                else PlainTextResponse("Unauthorized: sign in at /ui", 401))
                elif kind == "action" and not same_origin(request):
                    response = PlainTextResponse("Forbidden: cross-origin request", 403)
                elif kind == "action" and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
                    response = PlainTextResponse("Forbidden: missing or wrong CSRF token", 403)
                else:
                    response = await handler(request, session)
            except (ApiError, ValueError) as err:
                code = err.code if isinstance(err, ApiError) else 400
                title = err.reason if isinstance(err, ApiError) else "BadRequest"
                message = str(err)
                if kind == "page" and session is not None:
                    response = HTMLResponse(pages.message_page(title, message, csrf=session.csrf,
                                                               user=session.user.name), code)
                else:
                    response = PlainTextResponse(message, code)
            response.headers.setdefault("Cache-Control", "no-store")  # pages carry the CSRF token
            return add_security_headers(response)

        return handle

    # -- login -----------------------------------------------------------------------------------------

    async def login_get(self, request: Request) -> Response:
        if self.session(request) is not None:
            return add_security_headers(RedirectResponse(safe_next(request.query_params.get("next")), 303))
        return add_security_headers(self.login_form(request, safe_next(request.query_params.get("next")), status=200))

    async def login_post(self, request: Request) -> Response:
        return add_security_headers(await self._login(request))

    async def _login(self, request: Request) -> Response:
        if not same_origin(request):
            return PlainTextResponse("Forbidden: cross-origin login", 403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return PlainTextResponse("Unsupported Media Type: post the login form", 415)
        body = b""
        async for part in request.stream():
            body += part
            if len(body) > MAX_LOGIN_BODY:
                return PlainTextResponse("Request Entity Too Large", 413)
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), max_num_fields=10).items()}
        except (UnicodeDecodeError, ValueError):
            return PlainTextResponse("Bad Request: malformed form", 400)
        next_path = safe_next(form.get("next"))
        if not self.sessions.login_csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return self.login_form(request, next_path, "The sign-in form expired; please try again.", 403)
        token = (form.get("token") or "").strip()
        user = await self.authenticator.authenticate(Credentials(token=token)) if token else None
        if user is None:
            return self.login_form(request, next_path, "That token was not accepted.")
        session = self.sessions.create(user)
        response = RedirectResponse(next_path, 303)
        set_session_cookie(response, SESSION_COOKIE, session.id, secure=self.secure_for(request),
                           max_age=int(self.sessions.ttl.total_seconds()))
        clear_cookie(response, LOGIN_COOKIE, secure=self.secure_for(request))
        return response

    async def logout(self, request: Request) -> Response:
        session = self.session(request)
        if session is not None:
            body = (await request.body())[:MAX_LOGIN_BODY].decode("utf-8", errors="replace")
            field = (parse_qs(body, max_num_fields=10).get("csrf") or [""])[0]
            if not same_origin(request) or not csrf_ok(session, field):
                return add_security_headers(PlainTextResponse("Forbidden: missing or wrong CSRF token", 403))
            self.sessions.delete(session.id)
        response = RedirectResponse("/ui", 303)
        clear_cookie(response, SESSION_COOKIE, secure=self.secure_for(request))
        return add_security_headers(response)

    # -- data ------------------------------------------------------------------------------------------

    async def job_view(self, session: Session, namespace: str, name: str) -> tuple[Obj | None, Any, list[Obj],
                                                                                  Any, list[Obj]]:
        check_names(namespace, name)
        for verb, resource in (("get", "jobs"), ("list", "pods"), ("list", "events")):
            await self.require(session, verb, resource, namespace, name if resource == "jobs" else "")
        now = self.clock.now()
        try:
            job: Obj | None = await self.client.get("jobs", name, namespace)
        except NotFound:
            job = None
        if job is not None:
            uid = str((job.get("metadata") or {}).get("uid") or "")
            selector = f"batch.kubernetes.io/controller-uid={uid}"
        else:
            selector = f"batch.kubernetes.io/job-name={name}" if len(name) <= 63 else ""  # a label value
        pods = (await self.client.list("pods", namespace, label_selector=selector)).items if selector else []
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
        retry = retry_at(job, pods, now, *self.backoff) if job is not None else None
        logs = await self.authorize(session, "get", "pods", namespace, subresource="log")
        failures = [alerts.pod_entry(p, self.log_tails(namespace, p) if logs else {}, set())
                    for p in alerts.failed_pods(pods, MAX_FAILURES)]
        return job, tl, events, retry, failures

    def log_tails(self, namespace: str, pod: Obj) -> dict[str, list[str]]:
        """The last lines of each container's latest attempt, from the log store."""
        root = getattr(self.log_store, "root", None)
        if root is None:
            return {}
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        tails: dict[str, list[str]] = {}
        for a in history.pod_attempts(Path(root), namespace, str(meta.get("name") or "")):
            if a.uid == uid:  # sorted by start: the latest attempt of each container wins
                tails[a.container] = list(history.read_attempt(a.path))[-TAIL_LINES:]
        return tails

    async def cronjob_view(self, session: Session, namespace: str, name: str) -> tuple[Obj, list[Obj], list[Obj],
                                                                                      list[str], str]:
        check_names(namespace, name)
        for verb, resource in (("get", "cronjobs"), ("list", "jobs"), ("list", "events")):
            await self.require(session, verb, resource, namespace, name if resource == "cronjobs" else "")
        cj = await self.client.get("cronjobs", name, namespace)
        uid = (cj.get("metadata") or {}).get("uid")
        jobs = [j for j in (await self.client.list("jobs", namespace)).items
                if any(r.get("uid") == uid for r in (j.get("metadata") or {}).get("ownerReferences") or [])]
        job_names = {str((j.get("metadata") or {}).get("name")) for j in jobs}
        events = [e for e in (await self.client.list("events", namespace)).items
                  if ((e.get("involvedObject") or {}).get("kind"), (e.get("involvedObject") or {}).get("name"))
                  in {("CronJob", name), *(("Job", n) for n in job_names)}]
        next_runs: list[str] = []
        error = ""
        try:
            schedule = cronjob_schedule(cj)
            zone = cronjob_zone(cj, schedule)
            next_runs = [format_rfc3339_in(t, zone) for t in next_times(schedule, self.clock.now(), 5, zone)]
        except ValueError as err:
            error = f"The schedule cannot run: {err}"
        return cj, jobs, events, next_runs, error

    # -- pages and fragments -----------------------------------------------------------------------

    async def lists(self, session: Session) -> tuple[list[Obj], list[Obj]]:
        await self.require(session, "list", "jobs")
        await self.require(session, "list", "cronjobs")
        return (await self.client.list("jobs")).items, (await self.client.list("cronjobs")).items

    async def index(self, request: Request, session: Session) -> Response:
        jobs, cronjobs = await self.lists(session)
        return HTMLResponse(pages.list_page(jobs, cronjobs, self.clock.now(), csrf=session.csrf,
                                            user=session.user.name))

    async def jobs_partial(self, request: Request, session: Session) -> Response:
        jobs, cronjobs = await self.lists(session)
        return HTMLResponse(pages.jobs_fragment(jobs, cronjobs, self.clock.now()))

    async def job(self, request: Request, session: Session) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["name"]
        job, tl, events, retry, failures = await self.job_view(session, ns, name)
        if job is None and not tl.rows:
            raise NotFound(f"No Job {ns}/{name}.")
        return HTMLResponse(pages.job_page(ns, name, job, tl, events, self.clock.now(), retry=retry,
                                           failures=failures, csrf=session.csrf, user=session.user.name))

    async def job_partial(self, request: Request, session: Session) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["name"]
        job, tl, events, retry, failures = await self.job_view(session, ns, name)
        return HTMLResponse(pages.job_fragment(ns, name, job, tl, events, self.clock.now(), retry, failures))

    async def cronjob(self, request: Request, session: Session) -> Response:
        cj, jobs, events, next_runs, error = await self.cronjob_view(
            session, request.path_params["namespace"], request.path_params["name"])
        return HTMLResponse(pages.cronjob_page(cj, jobs, events, next_runs, error, self.clock.now(),
                                               csrf=session.csrf, user=session.user.name))

    async def cronjob_partial(self, request: Request, session: Session) -> Response:
        cj, jobs, events, next_runs, error = await self.cronjob_view(
            session, request.path_params["namespace"], request.path_params["name"])
        return HTMLResponse(pages.cronjob_fragment(cj, jobs, events, next_runs, error, self.clock.now()))

    # -- logs ---------------------------------------------------------------------------------------------

    async def attempt_log(self, request: Request, session: Session) -> Response:
        """One attempt's log from the log store (also of deleted pods), or with ``follow=true``
        the live log of a running container."""
        ns, pod = request.path_params["namespace"], request.path_params["pod"]
        check_names(ns, pod)
        await self.require(session, "get", "pods", ns, pod, "log")
        qp = request.query_params
        container = qp.get("container") or None
        if qp.get("follow") == "true":
            stream: AsyncIterator[bytes]
            if self.log_store is not None and hasattr(self.log_store, "read"):
                stream = self.log_store.read(ns, pod, container=container, follow=True)
            else:
                stream = self.client.read_log(ns, pod, container, follow=True)
            return StreamingResponse(reported(stream), media_type="text/plain; charset=utf-8")
        root = getattr(self.log_store, "root", None)
        if root is None:
            raise NotFound("no log store")
        attempts = history.pod_attempts(Path(root), ns, pod)
        uid, number = qp.get("uid") or "", qp.get("attempt") or ""
        chosen = [a for a in attempts if (not uid or a.uid == uid) and (not container or a.container == container)
                  and (not number.isdigit() or a.number == int(number))]
        if not chosen:
            raise NotFound(f"no logs for pod {pod}")
        path = chosen[-1].path  # up to --container-log-max-size x files: read it off the event loop
        text = await asyncio.to_thread(lambda: "\n".join(history.read_attempt(path)))
        return PlainTextResponse(text + ("\n" if text else ""))

    # -- live updates ---------------------------------------------------------------------------------

    async def changes(self, specs: list[Obj]) -> AsyncIterator[bytes]:
        """``ready`` once, then ``change`` whenever one of the watches reports something; ends
        when a watch ends (the script reconnects and refreshes)."""
        queue: asyncio.Queue[bool] = asyncio.Queue()

        async def pump(spec: Obj) -> None:
            try:
                async for _batch in self.client.watch(**spec):
                    queue.put_nowait(True)
            except Exception:  # Gone, a closed store...: the browser reconnects
                pass
            queue.put_nowait(False)

        tasks = [asyncio.create_task(pump(spec)) for spec in specs]
        try:
            yield b"ready\n"
            while True:
                more = await queue.get()
                while more and not queue.empty():
                    more = queue.get_nowait()
                yield b"change\n"
                if not more:
                    return
        finally:
            for task in tasks:
                task.cancel()

    async def watch_jobs(self, request: Request, session: Session) -> Response:
        await self.require(session, "watch", "jobs")
        await self.require(session, "watch", "cronjobs")
        return StreamingResponse(self.changes([{"resource": "jobs"}, {"resource": "cronjobs"}]),
                                 media_type="text/plain")

    async def watch_job(self, request: Request, session: Session) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["name"]
        check_names(ns, name)
        for resource in ("jobs", "pods", "events"):
            await self.require(session, "watch", resource, ns)
        specs: list[Obj] = [{"resource": "jobs", "namespace": ns, "field_selector": f"metadata.name={name}"},
                            {"resource": "events", "namespace": ns}]
        if len(name) <= 63:  # a label value
            specs.append({"resource": "pods", "namespace": ns, "label_selector": f"batch.kubernetes.io/job-name={name}"})
        return StreamingResponse(self.changes(specs), media_type="text/plain")

    async def watch_cronjob(self, request: Request, session: Session) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["name"]
        check_names(ns, name)
        for resource in ("cronjobs", "jobs", "events"):
            await self.require(session, "watch", resource, ns)
        specs: list[Obj] = [{"resource": "cronjobs", "namespace": ns, "field_selector": f"metadata.name={name}"},
                            {"resource": "jobs", "namespace": ns}, {"resource": "events", "namespace": ns}]
        return StreamingResponse(self.changes(specs), media_type="text/plain")

    # -- actions (POST, CSRF-checked by ``endpoint``) -------------------------------------------------

    async def job_action(self, request: Request, session: Session) -> Response:
        ns, name, action = (request.path_params[k] for k in ("namespace", "name", "action"))
        check_names(ns, name)
        if action in ("suspend", "resume"):
            await self.require(session, "patch", "jobs", ns, name)
            await self.client.patch("jobs", name, {"spec": {"suspend": action == "suspend"}}, ns, "merge")
            return JSONResponse({"ok": True})
        if action == "delete":
            await self.require(session, "delete", "jobs", ns, name)
            await self.client.delete("jobs", name, ns, propagation_policy="Background")
            return JSONResponse({"ok": True, "location": "/ui"})
        raise NotFound(f"no action {action!r} for Jobs")

    async def cronjob_action(self, request: Request, session: Session) -> Response:
        ns, name, action = (request.path_params[k] for k in ("namespace", "name", "action"))
        check_names(ns, name)
        if action in ("suspend", "resume"):
            await self.require(session, "patch", "cronjobs", ns, name)
            await self.client.patch("cronjobs", name, {"spec": {"suspend": action == "suspend"}}, ns, "merge")
            return JSONResponse({"ok": True})
        if action == "run":  # kubectl create job <cronjob>-manual-xxxxx --from=cronjob/<cronjob>
            await self.require(session, "get", "cronjobs", ns, name)
            await self.require(session, "create", "jobs", ns)
            cj = await self.client.get("cronjobs", name, ns)
            job_name = manual_job_name(name)
            await self.client.create("jobs", manual_job(cj, job_name), ns)
            return JSONResponse({"ok": True, "job": job_name, "location": pages.job_link(
                {"metadata": {"namespace": ns, "name": job_name}})})
        raise NotFound(f"no action {action!r} for CronJobs")

    # -- static -------------------------------------------------------------------------------------------

    async def static(self, request: Request) -> Response:
        name = request.path_params["file"]
        if name not in STATIC_FILES:
            return add_security_headers(PlainTextResponse("not found", 404))
        return add_security_headers(FileResponse(STATIC / name, media_type=STATIC_FILES[name],
                                                 headers={"Cache-Control": "no-cache"}))


async def reported(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A log stream whose failure (no such pod or container yet...) ends it with the reason
    as its last line: the status line has gone out already, and a traceback helps nobody."""
    try:
        async for chunk in stream:
            yield chunk
    except (ApiError, ValueError, OSError) as err:
        yield f"\n({err})\n".encode()


def manual_job_name(cronjob: str) -> str:
    """``<cronjob>-manual-<5 random chars>``, at most 63 characters (a Job name is a label value)."""
    suffix = "-manual-" + "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
    return cronjob[:63 - len(suffix)].rstrip("-.") + suffix


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def dashboard_routes(client: Client, *, log_store: Any, clock: Clock, authenticator: Authenticator,
                     authorizer: Authorizer, fallback: Any = None, secure_cookies: bool = False,
                     pod_failure_backoff: tuple[float, float] | None = None) -> list[BaseRoute]:
    """Routes for ``/`` (browsers only; other clients get ``fallback``) and ``/ui/...``.

    ``authenticator`` checks the token pasted into the login form; ``authorizer`` decides
    every read and action as the session's user. ``secure_cookies`` marks cookies Secure
    (the server speaks HTTPS). ``pod_failure_backoff`` is the Job controller's (base, cap)
    in seconds, to show when a Job in backoff retries.
    """
    defaults = JobControllerConfig()
    d = Dashboard(client, log_store, clock, authenticator, authorizer, secure_cookies,
                  pod_failure_backoff or (defaults.pod_failure_backoff, defaults.pod_failure_backoff_max))

    async def root(request: Request) -> Response:
        if wants_html(request) or fallback is None:
            return add_security_headers(RedirectResponse("/ui", status_code=307))
        response: Response = await fallback(request)
        return response

    def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return d.endpoint(handler, "page")

    def data(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return d.endpoint(handler, "data")

    def action(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return d.endpoint(handler, "action")

    return [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/ui", page(d.index), methods=["GET", "HEAD"]),
        Route("/ui/", page(d.index), methods=["GET", "HEAD"]),
        Route("/ui/login", d.login_get, methods=["GET", "HEAD"]),
        Route("/ui/login", d.login_post, methods=["POST"]),
        Route("/ui/logout", d.logout, methods=["POST"]),
        Route("/ui/static/{file}", d.static, methods=["GET", "HEAD"]),
        Route("/ui/partials/jobs", data(d.jobs_partial), methods=["GET"]),
        Route("/ui/partials/jobs/{namespace}/{name}", data(d.job_partial), methods=["GET"]),
        Route("/ui/partials/cronjobs/{namespace}/{name}", data(d.cronjob_partial), methods=["GET"]),
        Route("/ui/watch/jobs", data(d.watch_jobs), methods=["GET"]),
        Route("/ui/watch/jobs/{namespace}/{name}", data(d.watch_job), methods=["GET"]),
        Route("/ui/watch/cronjobs/{namespace}/{name}", data(d.watch_cronjob), methods=["GET"]),
        Route("/ui/jobs/{namespace}/{name}", page(d.job), methods=["GET", "HEAD"]),
        Route("/ui/cronjobs/{namespace}/{name}", page(d.cronjob), methods=["GET", "HEAD"]),
        Route("/ui/logs/{namespace}/{pod}", data(d.attempt_log), methods=["GET"]),
        Route("/ui/actions/jobs/{namespace}/{name}/{action}", action(d.job_action), methods=["POST"]),
        Route("/ui/actions/cronjobs/{namespace}/{name}/{action}", action(d.cronjob_action), methods=["POST"]),
    ]


def job_url(base: str, namespace: str, name: str) -> str:
    return f"{base.rstrip('/')}/ui/jobs/{quote(namespace, safe='')}/{quote(name, safe='')}"
