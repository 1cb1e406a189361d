"""Request and response bodies of the HTTP API (the stored models are in ``models.py``)."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field, field_validator

from .models import ID_PATTERN, Customer, Money, Order, OrderItem, OrderStatus

T = TypeVar("T")

#: an order's lines: 1 + 2 * 20 transaction actions at most (DynamoDB allows 100)
MAX_LINES = 20


class CustomerIn(BaseModel):
    customer_id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)


class ProductIn(BaseModel):
    product_id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    price: Money = Field(gt=0)
    stock: int = Field(default=0, ge=0)


class LineIn(BaseModel):
    product_id: str = Field(pattern=ID_PATTERN)
    quantity: int = Field(gt=0, le=1000)


class OrderIn(BaseModel):
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)

    @field_validator("lines")
    @classmethod
    def one_line_per_product(cls, lines: list[LineIn]) -> list[LineIn]:
        seen: set[str] = set()
        for line in lines:
            if line.product_id in seen:
                raise ValueError(f"product {line.product_id!r} appears in more than one line")
            seen.add(line.product_id)
        return lines


class StatusChange(BaseModel):
    status: OrderStatus
    version: int = Field(ge=1, description="the order version the change is based on")


class ViewIn(BaseModel):
    user_id: str | None = Field(default=None, max_length=64)


class PageOut(BaseModel, Generic[T]):
    """One page of results; pass ``cursor`` back to get the next one (None: no more)."""

    items: list[T]
    cursor: str | None


class CustomerOverview(BaseModel):
    customer: Customer
    recent_orders: list[Order]


class OrderDetail(BaseModel):
    order: Order
    items: list[OrderItem]
