"""The labeling web page: a FastAPI app over a :class:`~headstart.labeling.LabelingProject`.

    from headstart.labeling import open_project
    from headstart.labeling.web import create_app
    app = create_app(open_project("labels.db"))        # uvicorn.run(app); `headstart label serve` does this

Modules: ``app`` (the factory, error handling, limits), ``auth`` (tokens, roles, CSRF),
``assign`` (which items are out with whom), ``api`` (the JSON API), ``pages`` (HTML pages),
``overview`` (the admin figures and plot).
"""

from headstart.labeling.web.app import create_app

__all__ = ["create_app"]
