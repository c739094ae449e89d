"""ListDealersOperator: which dealers this run pulls, from PayloadCMS.

Returns a list of small ``DealerRef`` dicts (identity only; never credentials, since XCom stores values
in clear). A CMS document that fails validation is kept, with its error, so that dealer's pull fails
visibly instead of the dealer silently disappearing from the schedule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerRef
from od_scheduler.platforms import get_platform


def check_conf(conf: Mapping[str, Any] | None, params: Mapping[str, Any]) -> None:
    """Reject conf keys the DAG does not declare: a typo (``dealer-id``) must not widen a run to everyone."""
    unknown = sorted(set(conf or {}) - set(params))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in the run's conf: {', '.join(unknown)}; "
            f"this DAG accepts: {', '.join(sorted(params))}"
        )


class ListDealersOperator(BaseOperator):
    """List the active dealers of one platform (or the one ``dealer_id`` the run asks for)."""

    template_fields = ("dealer_id",)
    ui_color = "#e8f4fd"

    def __init__(self, *, platform: str, dealer_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform = platform
        self.dealer_id = dealer_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        platform = get_platform(self.platform)
        dag_run = context["dag_run"]
        try:
            check_conf(dag_run.conf, context["params"])
        except ConfigError as err:
            raise AirflowFailException(str(err)) from err
        dealer_id = (self.dealer_id or "").strip() or None
        if dealer_id in ("None",):  # an unset templated param renders as the string "None"
            dealer_id = None

        refs: list[DealerRef] = []
        with PayloadCmsHook().get_client() as client:
            try:
                for doc in client.iter_dealers(platform=platform.id, dealer_id=dealer_id):
                    if isinstance(doc, Dealer):
                        refs.append(DealerRef(dealer_id=doc.id, name=doc.name, slug=doc.slug))
                    else:
                        self.log.error(
                            "Dealer %s (%s) has an invalid CMS document and will fail this run: %s",
                            doc.id,
                            doc.name,
                            doc.error,
                        )
                        refs.append(
                            DealerRef(
                                dealer_id=doc.id or f"unknown:{doc.slug or doc.name}",
                                name=doc.name,
                                slug=doc.slug,
                                error=f"invalid dealer document in PayloadCMS: {doc.error}",
                            )
                        )
            except (PermanentUpstreamError, PayloadError) as err:
                raise AirflowFailException(f"PayloadCMS dealer listing failed: {err}") from err
            self.log.info(
                "PayloadCMS: %d API call(s), %d retries, %d rate-limited",
                client.stats.api_calls,
                client.stats.retries,
                client.stats.rate_limits_hit,
            )

        if dealer_id and not refs:
            raise AirflowFailException(
                f"dealer_id {dealer_id!r} is not an active {platform.name} dealer in PayloadCMS "
                "(unknown id, inactive, or not on this platform)"
            )
        duplicates = [d for d, n in Counter(r.dealer_id for r in refs).items() if n > 1]
        if duplicates:
            raise AirflowFailException(f"PayloadCMS returned dealer id(s) more than once: {duplicates}")
        invalid = sum(1 for r in refs if r.error)
        self.log.info(
            "%s: %d active dealer(s) selected%s%s",
            platform.name,
            len(refs),
            f" (dealer_id={dealer_id})" if dealer_id else "",
            f", {invalid} with an invalid CMS document" if invalid else "",
        )
        return [r.model_dump(mode="json") for r in refs]
