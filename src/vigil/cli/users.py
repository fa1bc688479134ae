"""``vigil users`` and ``vigil teams``: people, their roles and teams.

Whoever runs the command holds the data folder and acts as an admin; the audit trail names
them by their operating-system account. Passwords are never arguments: they are read from
standard input (``--password-stdin``) or prompted for twice.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated

import typer

from vigil.cli.common import console, render_rows, state
from vigil.core.auth import cli_principal
from vigil.core.errors import InputError
from vigil.people import credentials, service
from vigil.people.service import KEEP, Keep, UserInfo

users_app = typer.Typer(help="People who sign in: add, list, disable, passwords and roles.",
                        no_args_is_help=True)
teams_app = typer.Typer(help="Teams people belong to.", no_args_is_help=True)

OUTPUTS = ("table", "json", "csv")
OutputOption = Annotated[str, typer.Option("--format", "--output", "-o",
                                           help="table, json or csv.")]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input.")]


def output_format(output: str) -> str:
    """The output format, or InputError naming the choices."""
    value = output.strip().lower()
    if value not in OUTPUTS:
        raise InputError(f"--format must be one of {', '.join(OUTPUTS)}, not {output!r}")
    return value


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def _password(from_stdin: bool, username: str) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if password.endswith("\r"):
            password = password[:-1]
        if not password:
            raise InputError("--password-stdin: no password on standard input")
    else:
        if not sys.stdin.isatty():
            raise InputError("no terminal to ask for the password: use --password-stdin")
        password = typer.prompt(f"password for {username}", hide_input=True,
                                confirmation_prompt=True)
    credentials.check_password_policy(password, username)
    return password


def _user_line(user: UserInfo) -> str:
    team = f", team {user.team}" if user.team else ""
    state_text = " (disabled)" if user.disabled else ""
    return f"{user.username}: role {user.role.value}{team}{state_text}"


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Sign-in name (letters, digits, '_', '.', '-').")],
    role: Annotated[str, typer.Option(help="admin, analyst, responder or auditor.")],
    team: Annotated[str | None, typer.Option(help="Team, e.g. security or operations.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address (for notifications).")] = None,
    display_name: Annotated[str | None, typer.Option(help="Full name (default: user name).")]
    = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user (the password is asked for twice, or read with --password-stdin)."""
    name = service.normalize_username(username)
    service.human_role(role)
    db = state(ctx).db
    if team:
        service.get_team(db, team)
    if service.find_user(db, name) is not None:
        raise InputError(f"user name {name!r} is already taken")
    password = _password(password_stdin, name)
    user = service.add_user(db, cli_principal(), name, password, role=role, team=team,
                            email=email, display_name=display_name)
    console.print(f"user added: {_user_line(user)}", highlight=False)


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    output: OutputOption = "table",
    team: Annotated[str | None, typer.Option(help="Only members of this team.")] = None,
    role: Annotated[str | None, typer.Option(help="Only users with this role.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only enabled users.")] = False,
) -> None:
    """List users (never their passwords)."""
    fmt = output_format(output)
    chosen = service.human_role(role) if role else None
    db = state(ctx).db
    if team:
        service.get_team(db, team)
    users: list[UserInfo] = []
    while True:
        page = service.list_users(db, team=team, role=chosen, include_disabled=not active,
                                  limit=service.MAX_PAGE, offset=len(users))
        users.extend(page.users)
        if len(users) >= page.total or not page.users:
            break
    render_rows(["username", "display name", "email", "role", "team", "disabled", "created",
                 "last login"],
                [(u.username, u.display_name, u.email, u.role.value, u.team,
                  u.disabled if fmt != "table" else ("yes" if u.disabled else ""),
                  _when(u.created_at), _when(u.last_login_at)) for u in users], fmt)


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: Annotated[str, typer.Argument()]) -> None:
    """Disable a user: their sign-ins, sessions and personal tokens stop working at once."""
    user = service.disable_user(state(ctx).db, cli_principal(), username)
    console.print(f"user disabled: {_user_line(user)}", highlight=False)


@users_app.command("enable")
def users_enable(ctx: typer.Context, username: Annotated[str, typer.Argument()]) -> None:
    """Enable a disabled user again."""
    user = service.enable_user(state(ctx).db, cli_principal(), username)
    console.print(f"user enabled: {_user_line(user)}", highlight=False)


@users_app.command("passwd")
def users_passwd(ctx: typer.Context, username: Annotated[str, typer.Argument()],
                 password_stdin: PasswordStdin = False) -> None:
    """Set a user's password; their open sessions end."""
    db = state(ctx).db
    user = service.get_user(db, username)
    service.set_password(db, cli_principal(), user.username, _password(password_stdin, user.username))
    console.print(f"password of {user.username} changed; their sessions have ended", highlight=False)


@users_app.command("role")
def users_role(ctx: typer.Context, username: Annotated[str, typer.Argument()],
               role: Annotated[str, typer.Argument(help="admin, analyst, responder or auditor.")]
               ) -> None:
    """Give a user another role (it applies to their next request)."""
    user = service.set_role(state(ctx).db, cli_principal(), username, role)
    console.print(f"role changed: {_user_line(user)}", highlight=False)


@users_app.command("update")
def users_update(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument()],
    team: Annotated[str | None, typer.Option(help="Move to this team.")] = None,
    no_team: Annotated[bool, typer.Option("--no-team", help="Leave every team.")] = False,
    email: Annotated[str | None, typer.Option(help="New e-mail address ('' to remove).")] = None,
    display_name: Annotated[str | None, typer.Option(help="New full name.")] = None,
) -> None:
    """Change a user's team, e-mail address or full name."""
    if team is not None and no_team:
        raise InputError("--team and --no-team do not go together")
    new_team: str | Keep | None = None if no_team else team if team is not None else KEEP
    user = service.update_user(state(ctx).db, cli_principal(), username, team=new_team,
                               email=KEEP if email is None else email,
                               display_name=KEEP if display_name is None else display_name)
    console.print(f"user updated: {_user_line(user)}", highlight=False)


@teams_app.command("list")
def teams_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """List teams and how many users each has."""
    fmt = output_format(output)
    page = service.list_teams(state(ctx).db, limit=service.MAX_PAGE)
    render_rows(["team", "members", "description", "created"],
                [(t.name, t.members, t.description, _when(t.created_at)) for t in page.teams], fmt)


@teams_app.command("add")
def teams_add(ctx: typer.Context, name: Annotated[str, typer.Argument()],
              description: Annotated[str | None, typer.Option(help="What the team does.")] = None
              ) -> None:
    """Add a team."""
    team = service.add_team(state(ctx).db, cli_principal(), name, description)
    console.print(f"team added: {team.name}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``vigil users`` and ``vigil teams``."""
    app.add_typer(users_app, name="users")
    app.add_typer(teams_app, name="teams")

