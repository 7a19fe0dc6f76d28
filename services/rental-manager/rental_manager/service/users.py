"""Accounts and credentials: argon2id password hashes and short-lived HS256 JWT access tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from quartet_contracts.schemas.rental import UserRegistered

from rental_manager.domain.entities import User
from rental_manager.domain.model import Role
from rental_manager.service.access import require
from rental_manager.service.commands import CreateUser, RegisterUser
from rental_manager.service.errors import Conflict, NotFound, Unauthorized
from rental_manager.service.paging import Order, Window, paged
from rental_manager.service.read_models import UserRecord
from rental_manager.service.schemas import Page
from rental_manager.service.unit import SYSTEM, Actor, UnitOfWork

ISSUER = "quartet-rental-manager"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenSubject:
    """Whom a token names, and the account's token version when it was issued."""

    user_id: uuid.UUID
    version: int


class Credentials:
    """How passwords are hashed and tokens signed."""

    def __init__(self, hasher: PasswordHasher, secret: str, token_ttl_s: int) -> None:
        self.hasher = hasher
        self.secret = secret
        self.token_ttl_s = token_ttl_s
        # Verified against when the e-mail is unknown, so timing does not tell which addresses exist.
        self.decoy = hasher.hash(uuid.uuid4().hex)

    def issue(self, user: User, now: datetime | None = None) -> str:
        """A signed access token naming the user and their role."""
        issued = now or datetime.now(UTC)
        claims = {
            "sub": str(user.id),
            "role": user.role.value,
            "ver": user.token_version,
            "iss": ISSUER,
            "iat": issued,
            "exp": issued + timedelta(seconds=self.token_ttl_s),
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def subject(self, token: str) -> TokenSubject:
        """The user and token version a valid token names; Unauthorized if it is forged, expired or malformed."""
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub", "ver"]}
            )
            version = claims["ver"]
            if not isinstance(version, int) or isinstance(version, bool):
                raise ValueError("the token version is not an integer")
            return TokenSubject(uuid.UUID(str(claims["sub"])), version)
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthorized("the access token is invalid or expired") from exc


def normalise_email(email: str) -> str:
    """E-mail addresses compare case-insensitively."""
    return email.strip().lower()


def register(uow: UnitOfWork, creds: Credentials, data: RegisterUser, actor: Actor | None = None) -> UserRecord:
    """Create an account; only admins create admins (or create accounts through CreateUser)."""
    if isinstance(data, CreateUser):
        require(actor, Role.ADMIN)
    email = normalise_email(data.email)
    if uow.users.by_email(email) is not None:
        raise Conflict("an account with this e-mail address exists")
    user = User(
        id=uuid.uuid4(),
        email=email,
        full_name=data.full_name,
        role=Role(data.role),
        password_hash=creds.hasher.hash(data.password),
        active=True,
        created_at=uow.now,
    )
    uow.users.add(user)
    uow.emit(UserRegistered(user_id=user.id, role=user.role.value), key=user.id)
    return UserRecord.model_validate(user)


def authenticate(uow: UnitOfWork, creds: Credentials, email: str, password: str) -> User:
    """The active user with these credentials, or Unauthorized (the same answer for every failure)."""
    address = normalise_email(email)
    # No stored address holds a NUL (the schemas refuse them), and PostgreSQL cannot even compare one.
    user = None if "\x00" in address else uow.users.by_email(address)
    try:
        if user is None:
            creds.hasher.verify(creds.decoy, password)
            raise Unauthorized("wrong e-mail address or password")
        creds.hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise Unauthorized("wrong e-mail address or password") from exc
    if not user.active:
        raise Unauthorized("this account is disabled")
    if creds.hasher.check_needs_rehash(user.password_hash):
        user.password_hash = creds.hasher.hash(password)
    return user


def login(uow: UnitOfWork, creds: Credentials, email: str, password: str) -> str:
    """A bearer token for valid credentials."""
    return creds.issue(authenticate(uow, creds, email, password), uow.now)


def actor_for(uow: UnitOfWork, subject: TokenSubject) -> Actor:
    """The actor a token's subject is, if the account is active and has not signed out since it was issued."""
    user = uow.users.get(subject.user_id)
    if user is None or not user.active:
        raise Unauthorized("the account behind this token is gone or disabled")
    if subject.version != user.token_version:
        raise Unauthorized("this token was revoked when its account signed out")
    return Actor(user.id, user.role)


def sign_out(uow: UnitOfWork, actor: Actor | None) -> None:
    """Revoke every token issued to the caller so far (a database write: it holds whether or not Redis is up)."""
    who = require(actor)
    user = uow.users.get(who.id, lock=True)
    if user is None:
        raise NotFound("user", who.id)
    user.token_version += 1


def me(uow: UnitOfWork, actor: Actor | None) -> UserRecord:
    """The caller's own account."""
    who = require(actor)
    return UserRecord.model_validate(uow.users.get(who.id))


def list_users(
    uow: UnitOfWork, actor: Actor | None, role: Role | None = None, page: int = 1, page_size: int = 50
) -> Page[UserRecord]:
    """Every account (admins only)."""
    require(actor, Role.ADMIN)
    window = Window(page, page_size)
    found = uow.users.listed({"role": role}, Order("created_at", descending=False), window)
    return paged(found, UserRecord, window)


def ensure_admin(uow: UnitOfWork, creds: Credentials, email: str, password: str) -> bool:
    """Create the configured admin if no account has the address; True if one was created."""
    if uow.users.by_email(normalise_email(email)) is not None:
        return False
    data = CreateUser(email=email, password=password, full_name="Administrator", role="admin")
    register(uow, creds, data, SYSTEM)
    return True
