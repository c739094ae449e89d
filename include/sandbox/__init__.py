"""Local stand-ins for the project's upstreams (PayloadCMS, Dealer.com sites, the Open Dealer Data API).

Run ``python -m include.sandbox``, or build an app in-process with
``include.sandbox.app.create_app``. See ``include/sandbox/README.md``.
"""
