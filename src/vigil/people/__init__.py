"""People: users, teams, roles, sign-in sessions and API tokens.

Other contexts look people up here, never in the tables: :func:`find_user` /
:func:`get_user` (by name, any case), :func:`user_exists`, :func:`users_of_team`,
:func:`email_of` / :func:`emails_of` (notifications), :func:`list_users`. Changes take the
acting :class:`~vigil.core.auth.Principal` and are audited.
"""

from __future__ import annotations

from vigil.people.auth import authenticate
from vigil.people.service import (
    KEEP,
    TeamInfo,
    TeamPage,
    UserInfo,
    UserPage,
    add_team,
    add_user,
    disable_user,
    email_of,
    emails_of,
    enable_user,
    find_user,
    get_team,
    get_user,
    get_user_by_id,
    list_teams,
    list_users,
    normalize_username,
    principal_of,
    set_password,
    set_role,
    update_user,
    user_exists,
    users_of_team,
)
from vigil.people.sessions import NewSession, change_password, login, logout

__all__ = ["KEEP", "NewSession", "TeamInfo", "TeamPage", "UserInfo", "UserPage", "add_team",
           "add_user", "authenticate", "change_password", "disable_user", "email_of",
           "emails_of", "enable_user", "find_user", "get_team", "get_user",
           "get_user_by_id", "list_teams",
           "list_users", "login", "logout", "normalize_username", "principal_of", "set_password", "set_role",
           "update_user", "user_exists", "users_of_team"]
