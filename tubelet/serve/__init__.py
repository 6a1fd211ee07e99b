"""tubelet as a service: the HTTP API, its jobs and the web page over one catalog (`tubelet serve`)."""

from tubelet.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
