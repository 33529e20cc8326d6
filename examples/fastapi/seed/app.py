"""Todo API in FastAPI + SQLModel — the seed's shape, BEFORE Gatehouse.

Kept for comparison (docs/migrating.md shows `diff -u seed/app.py app.py`)
and for `make bench`. Like the seed, it verifies the Better Auth JWT itself:
HS256 with a secret shared with the auth server, checked with python-jose,
and it is reachable by the browser directly (CORS for the frontend's origin).
Every query is filtered by the token's sub by hand.

Run:   DATABASE_URL=postgres://... JWT_SECRET=... ALLOW_PUBLIC_ADDR=1 \
       BACKEND_ADDR=0.0.0.0:8000 ../serve.py .
"""
import json
import os
import re
import sys
from datetime import datetime, timezone
from typing import List, Optional

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose import JWTError, jwt
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Column, DateTime, text
from sqlmodel import Field, Session, SQLModel, col, create_engine, select
from starlette.exceptions import HTTPException as StarletteHTTPException

MAX_TITLE = 500
MAX_BODY = 64 << 10
DEFAULT_LIMIT, MAX_LIMIT = 50, 100


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("todo-api: DATABASE_URL is required: want postgres://user:password@host:5432/db")
    # SQLAlchemy names the dialect "postgresql"; libpq accepts both.
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", url)


JWT_SECRET = os.environ.get("JWT_SECRET", "")
if len(JWT_SECRET) < 32:
    sys.exit("todo-api: JWT_SECRET is required: the HS256 secret shared with the auth server, 32+ bytes")
JWT_ISSUER = os.environ.get("JWT_ISSUER") or None
JWT_AUDIENCE = os.environ.get("JWT_AUDIENCE") or None
FRONTEND_ORIGIN = os.environ.get("FRONTEND_ORIGIN", "http://localhost:3000")

engine = create_engine(database_url(), pool_size=10, max_overflow=0, pool_pre_ping=True)


class Todo(SQLModel, table=True):
    __tablename__ = "todos"
    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: str = Field(index=True, max_length=128)
    title: str = Field(max_length=MAX_TITLE)
    completed: bool = False
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ApiError(Exception):
    """An error the client may see: status, an UPPER_SNAKE code, a sentence."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


app = FastAPI(title="todo-api", docs_url=None, redoc_url=None, openapi_url=None)
app.add_middleware(CORSMiddleware, allow_origins=[FRONTEND_ORIGIN], allow_credentials=True,
                   allow_methods=["*"], allow_headers=["Authorization", "Content-Type"])


@app.on_event("startup")
def migrate() -> None:
    # Several workers (and replicas) start at once: one creates the table.
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(7461726)"))
        SQLModel.metadata.create_all(conn)


@app.exception_handler(ApiError)
def api_error(_: Request, e: ApiError) -> JSONResponse:
    return JSONResponse({"code": e.code, "message": e.message}, status_code=e.status)


@app.exception_handler(StarletteHTTPException)
def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
    if e.status_code == 405:
        return JSONResponse({"code": "METHOD_NOT_ALLOWED", "message": "Method not allowed."}, status_code=405)
    return JSONResponse({"code": "NOT_FOUND", "message": "Not found."}, status_code=404)


# ---- who is calling ---------------------------------------------------------

bearer = HTTPBearer(auto_error=False)


def current_user(cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> str:
    """The caller's id: the sub of a Better Auth JWT, signed HS256 with the
    shared secret."""
    if cred is None:
        raise ApiError(401, "UNAUTHENTICATED", "Missing bearer token.")
    try:
        claims = jwt.decode(cred.credentials, JWT_SECRET, algorithms=["HS256"],
                            issuer=JWT_ISSUER, audience=JWT_AUDIENCE,
                            options={"verify_aud": JWT_AUDIENCE is not None, "require_exp": True,
                                     "require_sub": True})
    except JWTError:
        raise ApiError(401, "UNAUTHENTICATED", "Invalid or expired token.")
    return claims["sub"]


# ---- request parsing ----------------------------------------------------------

async def json_object(request: Request) -> dict:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json.")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", "Request body must be at most 64 KiB.")
    if not body.strip():
        raise ApiError(400, "INVALID_JSON", "Request body is empty; want a JSON object.")
    try:
        obj = json.loads(body)
    except ValueError:
        raise ApiError(400, "INVALID_JSON", "Request body is not valid JSON.")
    if not isinstance(obj, dict):
        raise ApiError(400, "INVALID_JSON", "Request body must be a JSON object.")
    return obj


def fields(obj: dict) -> dict:
    """title and completed, type-checked; unknown fields are refused."""
    for key in obj:
        if key not in ("title", "completed"):
            raise ApiError(400, "UNKNOWN_FIELD", f'Unknown field "{key}".')
    if "title" in obj and not isinstance(obj["title"], str):
        raise ApiError(400, "INVALID_TYPE", 'Field "title" must be a string.')
    if "completed" in obj and not isinstance(obj["completed"], bool):
        raise ApiError(400, "INVALID_TYPE", 'Field "completed" must be a boolean.')
    if "title" in obj:
        obj["title"] = clean_title(obj["title"])
    return obj


def clean_title(s: str) -> str:
    s = s.strip()
    if not s:
        raise ApiError(400, "INVALID_TITLE", "Title must not be empty.")
    if len(s) > MAX_TITLE:
        raise ApiError(400, "INVALID_TITLE", "Title must be at most 500 characters.")
    if "\x00" in s:
        raise ApiError(400, "INVALID_TITLE", "Title must not contain NUL characters.")
    return s


async def json_body(request: Request) -> dict:
    return fields(await json_object(request))


def todo_id(raw_id: str) -> int:
    """The {raw_id} path parameter: a positive 64-bit integer, else 400."""
    if not raw_id.isascii() or not raw_id.isdigit() or not 1 <= int(raw_id) < 1 << 63:
        raise ApiError(400, "INVALID_ID", "Todo id must be a positive integer.")
    return int(raw_id)


def iso(t: datetime) -> str:
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def out(t: Todo) -> dict:
    return {"id": t.id, "title": t.title, "completed": t.completed, "user_id": t.user_id,
            "created_at": iso(t.created_at), "updated_at": iso(t.updated_at)}


def session():
    with Session(engine) as s:
        yield s


def owned(db: Session, uid: str, tid: int) -> Todo:
    """The caller's todo with that id; someone else's is indistinguishable
    from a missing one."""
    t = db.exec(select(Todo).where(Todo.id == tid, Todo.user_id == uid)).first()
    if t is None:
        raise ApiError(404, "TODO_NOT_FOUND", "No todo with that id.")
    return t


# ---- routes ---------------------------------------------------------------------

@app.get("/healthz")
def healthz() -> dict:
    return {"ok": True}


@app.get("/readyz")
def readyz(db: Session = Depends(session)) -> dict:
    db.exec(text("SELECT 1"))
    return {"ok": True}


@app.get("/api/v1/todos")
@app.get("/api/v1/todos/")
def list_todos(request: Request, uid: str = Depends(current_user), db: Session = Depends(session)):
    q = request.query_params
    stmt = select(Todo).where(Todo.user_id == uid)
    limit = DEFAULT_LIMIT
    if "completed" in q:
        if q["completed"] not in ("true", "false"):
            raise ApiError(400, "INVALID_QUERY", "completed must be true or false.")
        stmt = stmt.where(Todo.completed == (q["completed"] == "true"))
    if "limit" in q:
        if not q["limit"].isdigit() or not 1 <= int(q["limit"]) <= MAX_LIMIT:
            raise ApiError(400, "INVALID_QUERY", "limit must be an integer from 1 to 100.")
        limit = int(q["limit"])
    if "after" in q:
        if not q["after"].isdigit() or int(q["after"]) >= 1 << 63:
            raise ApiError(400, "INVALID_QUERY", "after must be a todo id.")
        stmt = stmt.where(col(Todo.id) > int(q["after"]))
    rows: List[Todo] = db.exec(stmt.order_by(col(Todo.id)).limit(limit + 1)).all()
    headers = {}
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = f"after={rows[-1].id}&limit={limit}"
        if "completed" in q:
            nxt += "&completed=" + q["completed"]
        headers["Link"] = f'</api/v1/todos?{nxt}>; rel="next"'
    return JSONResponse([out(t) for t in rows], headers=headers)


@app.post("/api/v1/todos", status_code=201)
@app.post("/api/v1/todos/", status_code=201)
def create_todo(uid: str = Depends(current_user), body: dict = Depends(json_body), db: Session = Depends(session)):
    if "title" not in body:
        raise ApiError(400, "INVALID_TITLE", "Title is required.")
    now = datetime.now(timezone.utc)
    t = Todo(user_id=uid, title=body["title"], completed=body.get("completed", False),
             created_at=now, updated_at=now)
    db.add(t)
    db.commit()
    db.refresh(t)
    return JSONResponse(out(t), status_code=201, headers={"Location": f"/api/v1/todos/{t.id}"})


@app.get("/api/v1/todos/{raw_id}")
@app.get("/api/v1/todos/{raw_id}/")
def get_todo(uid: str = Depends(current_user), tid: int = Depends(todo_id), db: Session = Depends(session)):
    return out(owned(db, uid, tid))


@app.patch("/api/v1/todos/{raw_id}")
@app.patch("/api/v1/todos/{raw_id}/")
def update_todo(uid: str = Depends(current_user), tid: int = Depends(todo_id), body: dict = Depends(json_body),
                db: Session = Depends(session)):
    if not body:
        raise ApiError(400, "EMPTY_PATCH", "Send title and/or completed to change.")
    t = owned(db, uid, tid)
    for k, v in body.items():
        setattr(t, k, v)
    t.updated_at = datetime.now(timezone.utc)
    db.add(t)
    db.commit()
    db.refresh(t)
    return out(t)


@app.delete("/api/v1/todos/{raw_id}", status_code=204)
@app.delete("/api/v1/todos/{raw_id}/", status_code=204)
def delete_todo(uid: str = Depends(current_user), tid: int = Depends(todo_id), db: Session = Depends(session)):
    db.delete(owned(db, uid, tid))
    db.commit()
    return Response(status_code=204)


@app.api_route("/api/v1/{rest:path}", methods=["GET", "POST", "DELETE"])
def unknown(rest: str, uid: str = Depends(current_user)):
    raise ApiError(404, "NOT_FOUND", "Not found.")
