"""FastAPI dependencies: the request's session (commits on success), settings and the logged-in operator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.access import Principal
from mobilize.errors import Unauthorized
from mobilize.security import principal_for, read_token
from mobilize.settings import Settings
from rosters.vocabulary import SkillVocabulary, WorkGroupTemplate

__all__ = ["CommitRoute", "SessionDep", "SettingsDep", "PrincipalDep", "SkillsDep", "WorkGroupsDep", "get_session"]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session; :class:`CommitRoute` commits it before the response leaves.

    FastAPI runs the code after ``yield`` only once the response is sent, far too late to report a
    failed commit, so this dependency only rolls back (on error) and closes.
    """
    async with request.app.state.sessionmaker() as session:
        request.state.db_session = session
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


class CommitRoute(APIRoute):
    """A route that commits the request's session when the endpoint returns, before responding.

    A commit that fails raises here, so the client gets an error instead of a success that did not
    happen; an endpoint that raised is rolled back by :func:`get_session`.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def commit_then_respond(request: Request) -> Response:
            response = await handler(request)
            session = getattr(request.state, "db_session", None)
            if session is not None and session.in_transaction():
                await session.commit()
            return response

        return commit_then_respond


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_skills(request: Request) -> SkillVocabulary:
    return request.app.state.skills


def get_workgroups(request: Request) -> WorkGroupTemplate:
    return request.app.state.workgroups


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SkillsDep = Annotated[SkillVocabulary, Depends(get_skills)]
WorkGroupsDep = Annotated[WorkGroupTemplate, Depends(get_workgroups)]


async def current_principal(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """Return the operator the bearer token names; 401 without a valid one."""
    if not token:
        raise Unauthorized()
    operator_id = read_token(token, secret=request.app.state.secret)
    return await principal_for(session, operator_id)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
