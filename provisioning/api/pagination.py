"""Page-number pagination with a client-chosen ``page_size`` (capped), strict about both: a
``page`` or ``page_size`` that is not a positive integer is a 400 saying so, not ignored."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

MAX_PAGE_SIZE = 500


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        _positive(request, self.page_query_param)
        _positive(request, self.page_size_query_param, maximum=MAX_PAGE_SIZE)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = MAX_PAGE_SIZE
        return parameters


def _positive(request: Request, name: str, maximum: int | None = None) -> None:
    values = request.query_params.getlist(name)
    if not values:
        return
    limit = f" up to {maximum}" if maximum else ""
    message = f"A whole number from 1{limit}."
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise exceptions.ValidationError({name: [message]}) from None
    if len(numbers) > 1 or numbers[0] < 1 or (maximum is not None and numbers[0] > maximum):
        raise exceptions.ValidationError({name: [message]})
