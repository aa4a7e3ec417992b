"""The web app: server-rendered pages and a REST API over one workspace (FastAPI on uvicorn)."""
