"""CheckFreshnessOperator: one digest alert of dealers going stale, from the CMS and the job history.

Every active dealer on every platform it uses is judged by ``od_scheduler.alert_rules.check_freshness``:
missing executions (last success older than ``missing_after_intervals`` x its interval), held back after
repeated failures, or an inventory anomaly in its latest execution. New conditions go out as ONE digest;
conditions already alerted stay quiet until they clear; conditions no longer found are cleared. Returns
the counts. The listing also refreshes the dealer directory (names beside ids on the status page).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator, Context

from od_scheduler.alert_rules import SWEPT_KINDS, check_freshness, freshness_alert
from od_scheduler.hooks.alert_state import AlertStateHook
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.models.alert import ConditionKind, condition_key
from od_scheduler.models.dealer import Dealer
from od_scheduler.notifications import WebhookAlertNotifier
from od_scheduler.settings import get_settings


class CheckFreshnessOperator(BaseOperator):
    """Check every active dealer's freshness and send one digest of what is newly wrong."""

    ui_color = "#fdf2e9"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        settings = get_settings()
        dealers = self._active_dealers()
        state = AlertStateHook()
        # Every active dealer, whichever platform DAGs ran: the status page and API can name them all.
        state.remember_dealers(dealers)
        histories = state.freshness_histories([d.id for d in dealers])
        report = check_freshness(
            dealers,
            histories,
            now=datetime.now(UTC),
            hold_after_failures=settings.hold_after_failures,
            missing_after_intervals=settings.missing_after_intervals,
        )
        notifier = WebhookAlertNotifier(state=state)
        # The check ran: whatever made an earlier one fail (CMS or database down) is over.
        notifier.clear([condition_key(ConditionKind.SYSTEM, dag_id)])
        alert = notifier.send_new(
            report.conditions, lambda new: freshness_alert(new, report, dag_id=dag_id, run_id=run_id)
        )
        present = {c.key for c in report.conditions}
        notifier.clear_open([k.value for k in SWEPT_KINDS], keep=present)
        notifier.clear(report.cleared_anomalies)
        counts = {kind.value: len(report.of_kind(kind)) for kind in ConditionKind if report.of_kind(kind)}
        self.log.info(
            "%d dealer x platform pair(s) checked (%d never run, %d paused): open problems %s; %s",
            report.checked,
            report.never_run,
            report.paused,
            counts or "none",
            f"digest sent for {len(alert.conditions)} new one(s)" if alert else "nothing new to alert",
        )
        for condition in report.conditions:
            self.log.warning("%s: %s", condition.key, condition.detail)
        return {
            "checked": report.checked,
            "open": counts,
            "alerted": alert.conditions if alert else [],
        }

    def _active_dealers(self) -> list[Dealer]:
        """Every active dealer in the CMS (documents that fail validation are reported by list_dealers)."""
        dealers: list[Dealer] = []
        invalid = 0
        with PayloadCmsHook().get_client() as client:
            for doc in client.iter_dealers(platform=None):
                if isinstance(doc, Dealer):
                    dealers.append(doc)
                else:
                    invalid += 1
        self.log.info(
            "PayloadCMS: %d active dealer(s)%s",
            len(dealers),
            f", {invalid} with an invalid document (skipped here)" if invalid else "",
        )
        return dealers
