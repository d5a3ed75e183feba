"""FastAPI dependencies: the request's session (commits on success), settings and the logged-in operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.access import Principal
from mobilize.errors import Unauthorized
from mobilize.security import principal_for, read_token
from mobilize.settings import Settings
from rosters.vocabulary import SkillVocabulary, WorkGroupTemplate

__all__ = ["SessionDep", "SettingsDep", "PrincipalDep", "SkillsDep", "WorkGroupsDep", "get_session"]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session: committed when the route returns, rolled back on any error."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


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
