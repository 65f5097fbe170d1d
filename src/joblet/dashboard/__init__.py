"""joblet's web dashboard: Jobs and CronJobs, per-attempt timelines, logs, events, actions.

Served by ``joblet server`` at ``/`` and ``/ui`` (see :mod:`joblet.dashboard.app`); pages are
rendered on the server (:mod:`joblet.dashboard.pages`) and kept live by a small, dependency-free
script (``static/app.js``) that calls only ``/ui`` routes; sign-in and sessions are
:mod:`joblet.dashboard.session`.
"""

from joblet.dashboard.app import dashboard_routes, job_url

__all__ = ["dashboard_routes", "job_url"]
