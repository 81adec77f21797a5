"""The prediction server of ``headstart serve``: a FastAPI app over a model folder or an exported folder.

Its packages are the ``serve`` extra (fastapi, uvicorn, python-multipart, prometheus-client); nothing
else in headstart imports this package, so ``import headstart`` does not need them.
"""
