"""The permits proposals' endpoints and pages declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from cornerstore.access import Authorize, AuthorizeShop, Permit
from cornerstore.authz import Action, Resource

ProposalCreate = Annotated[Permit, Depends(AuthorizeShop(Resource.proposal, Action.create))]
ShopProposalRead = Annotated[Permit, Depends(AuthorizeShop(Resource.proposal, Action.read))]
ProposalAnswer = Annotated[Permit, Depends(AuthorizeShop(Resource.proposal, Action.write))]
#: A consumer's own proposals, whichever shop they went to.
OwnProposalRead = Annotated[Permit, Depends(Authorize(Resource.proposal, Action.list))]
