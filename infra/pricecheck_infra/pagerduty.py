"""PagerDuty on-call for one stack: team, schedule, escalation policy, a service per alert
domain and an Events API v2 integration per service.

Users are looked up by e-mail, not created: PagerDuty users are people with licenses and
notification rules that an admin (or SSO) owns. The integration keys are the routing keys
the Prefect PagerDuty blocks send to; the provider returns them in plain text, so they are
wrapped secret here and in the resource options before anything else sees them.
"""

from __future__ import annotations

from typing import get_args

import pulumi
import pulumi_pagerduty as pagerduty

from pricecheck_alerts.config.models import Domain
from pricecheck_alerts.config.stacks import PagerDutyConfig, PagerDutyServiceConfig

DOMAINS: tuple[Domain, ...] = get_args(Domain)
INTEGRATION_TYPE = "events_api_v2_inbound_integration"


def urgency_args(service: PagerDutyServiceConfig, config: PagerDutyConfig) -> dict[str, object]:
    """Service arguments for the urgency setting: constant, or by support hours (high in
    hours, low outside, raised to high when support hours start)."""
    if service.urgency != "support-hours":
        return {
            "incident_urgency_rule": pagerduty.ServiceIncidentUrgencyRuleArgs(
                type="constant", urgency=service.urgency
            )
        }
    hours = config.support_hours
    return {
        "incident_urgency_rule": pagerduty.ServiceIncidentUrgencyRuleArgs(
            type="use_support_hours",
            during_support_hours=pagerduty.ServiceIncidentUrgencyRuleDuringSupportHoursArgs(
                type="constant", urgency="high"
            ),
            outside_support_hours=pagerduty.ServiceIncidentUrgencyRuleOutsideSupportHoursArgs(
                type="constant", urgency="low"
            ),
        ),
        "support_hours": pagerduty.ServiceSupportHoursArgs(
            type="fixed_time_per_day",
            time_zone=config.time_zone,
            start_time=hours.start,
            end_time=hours.end,
            days_of_weeks=list(hours.days),
        ),
        "scheduled_actions": [
            pagerduty.ServiceScheduledActionArgs(
                type="urgency_change",
                to_urgency="high",
                ats=[
                    pagerduty.ServiceScheduledActionAtArgs(
                        type="named_time", name="support_hours_start"
                    )
                ],
            )
        ],
    }


def _timeout(seconds: int | None) -> str:
    # The provider takes seconds as a string; "null" disables the timeout.
    return "null" if seconds is None else str(seconds)


class PagerDutyOnCall(pulumi.ComponentResource):
    """Everything PagerDuty needs so that a critical alert of a domain pages the on-call."""

    service_ids: dict[str, pulumi.Output[str]]
    routing_keys: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        environment: str,
        config: PagerDutyConfig,
        token: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
        protect: bool = False,
    ) -> None:
        super().__init__("pricechecktn:pagerduty:OnCall", name, None, opts)
        assert config.team is not None and config.escalation is not None  # validated
        provider = pagerduty.Provider(
            f"{name}-provider", token=token, opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        # What pages people: never deleted by accident where the stack protects it.
        kept = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=protect))
        invoke = pulumi.InvokeOptions(provider=provider)

        emails = sorted(
            {u for layer in config.schedule_layers for u in layer.users} | {config.escalation.lead}
        )
        users = {e: pagerduty.get_user_output(email=e, opts=invoke).id for e in emails}

        team = pagerduty.Team(
            f"{name}-team",
            name=config.team,
            description=f"PriceCheckTN MLOps on-call ({environment}), managed by Pulumi.",
            opts=kept,
        )
        memberships = [
            pagerduty.TeamMembership(
                f"{name}-member-{email}",
                team_id=team.id,
                user_id=users[email],
                role="responder",
                opts=child,
            )
            for email in emails
        ]
        schedule = pagerduty.Schedule(
            f"{name}-schedule",
            name=f"PriceCheckTN {environment} on-call",
            time_zone=config.time_zone,
            teams=[team.id],
            layers=[
                pagerduty.ScheduleLayerArgs(
                    name=layer.name,
                    start=layer.start,
                    rotation_virtual_start=layer.start,
                    rotation_turn_length_seconds=layer.rotation_turn_length_seconds,
                    users=[users[u] for u in layer.users],
                )
                for layer in config.schedule_layers
            ],
            opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=memberships)),
        )
        policy = pagerduty.EscalationPolicy(
            f"{name}-escalation",
            name=f"PriceCheckTN {environment}",
            description="On-call schedule first, then the MLOps lead.",
            num_loops=config.escalation.loops,
            teams=team.id,
            rules=[
                pagerduty.EscalationPolicyRuleArgs(
                    escalation_delay_in_minutes=config.escalation.delay_minutes,
                    targets=[
                        pagerduty.EscalationPolicyRuleTargetArgs(
                            type="schedule_reference", id=schedule.id
                        )
                    ],
                ),
                pagerduty.EscalationPolicyRuleArgs(
                    escalation_delay_in_minutes=config.escalation.delay_minutes,
                    targets=[
                        pagerduty.EscalationPolicyRuleTargetArgs(
                            type="user_reference", id=users[config.escalation.lead]
                        )
                    ],
                ),
            ],
            opts=kept,
        )

        self.service_ids = {}
        self.routing_keys = {}
        for domain in DOMAINS:
            settings = config.services[domain]
            service = pagerduty.Service(  # type: ignore[call-overload]
                f"{name}-{domain}",
                name=f"PriceCheckTN {environment} {domain}",
                description=f"PriceCheckTN {domain} alerts ({environment}) from Prefect.",
                escalation_policy=policy.id,
                acknowledgement_timeout=_timeout(settings.ack_timeout_s),
                auto_resolve_timeout=_timeout(settings.auto_resolve_timeout_s),
                **urgency_args(settings, config),
                opts=kept,
            )
            integration = pagerduty.ServiceIntegration(
                f"{name}-{domain}-events-v2",
                name="Prefect (Events API v2)",
                service=service.id,
                type=INTEGRATION_TYPE,
                opts=pulumi.ResourceOptions.merge(
                    kept, pulumi.ResourceOptions(additional_secret_outputs=["integration_key"])
                ),
            )
            self.service_ids[domain] = service.id
            self.routing_keys[domain] = pulumi.Output.secret(integration.integration_key)
        self.register_outputs({"service_ids": self.service_ids})
