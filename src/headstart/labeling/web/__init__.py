"""The labeling web page: a FastAPI app over a :class:`~headstart.labeling.LabelingProject`.

    from headstart.labeling import open_project
    from headstart.labeling.web import create_app
    app = create_app(open_project("labels.db"))        # uvicorn.run(app); `headstart label serve` does this

Modules: ``app`` (the factory and error handling), ``limits`` (body size, server timing),
``auth`` (tokens, roles, CSRF), ``assign`` (which items go to whom), ``api`` (the JSON API),
``pages`` (the HTML pages), ``admin`` (the admin page: figures, people, guidelines), ``review`` (the
review queue), ``overview`` (the admin figures and plot), ``guidelines`` (markdown, rendered safely),
``docs`` (``/docs`` with Swagger UI served by the app), ``csp`` (the Content-Security-Policy).
Templates and the page's script and style sheet are package data (no build step).
"""

from headstart.labeling.web.app import create_app

__all__ = ["create_app"]
