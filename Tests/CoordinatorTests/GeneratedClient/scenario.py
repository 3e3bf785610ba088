"""A short operator scenario with the Python client openapi-python-client generated from openapi/openapi.yaml.

GeneratedClientTests runs it against a real coordinator: python scenario.py BASE_URL KEY_FILE PACKAGE, with the
generated package `fleetadapt_client` on PYTHONPATH. The admin key is read from KEY_FILE (never an argument or an
environment variable). Every answer is parsed into the generated models, so a body that does not match the spec
fails here. The last line is a JSON object with what was created, for the test to check against the API.
"""

import json
import sys
import uuid

from fleetadapt_client import AuthenticatedClient
from fleetadapt_client.api.campaigns import create_domain, get_campaign
from fleetadapt_client.api.devices import get_device, get_fleet_summary, list_devices, register_device
from fleetadapt_client.api.models import list_models, publish_model
from fleetadapt_client.models import (
    Campaign, Constraints, Device, DeviceCreated, DevicePage, DeviceRegistration, DomainCreated, DomainRequest, FleetSummary,
    Hardware, JobSpec, JobSpecLoss, Labels, Model, Problem, Rollout, Selector,
)
from fleetadapt_client.types import File


def expect(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def main():
    base_url, key_file, package = sys.argv[1:4]
    with open(key_file) as f:
        key = f.readline().strip()
    client = AuthenticatedClient(base_url=base_url, token=key, raise_on_unexpected_status=True)

    # Register three devices, two of them at site berlin.
    created = []
    for name, site in [("py-1", "berlin"), ("py-2", "berlin"), ("py-3", "paris")]:
        body = DeviceRegistration(
            name=name,
            hardware=Hardware(class_="jetson-tx2", gflops=20.0, memory_mb=4096),
            constraints=Constraints(latency_budget_ms=30.0, memory_budget_mb=256.0),
            labels=Labels.from_dict({"fleet": "python", "site": site}),
        )
        r = register_device.sync_detailed(client=client, body=body, idempotency_key=str(uuid.uuid4()))
        expect(r.status_code == 201 and isinstance(r.parsed, DeviceCreated), f"register {name}: {r.status_code}")
        expect(r.parsed.token.startswith("fad_"), f"{name}'s token is a device token")
        created.append(r.parsed.device)

    # List with a label filter: the two at berlin.
    r = list_devices.sync_detailed(client=client, labels="fleet=python,site=berlin")
    expect(r.status_code == 200 and isinstance(r.parsed, DevicePage), f"list devices: {r.status_code}")
    names = sorted(d.name for d in r.parsed.items)
    expect(names == ["py-1", "py-2"], f"the label filter selects py-1 and py-2: {names}")
    expect(all(isinstance(d, Device) and d.labels["site"] == "berlin" for d in r.parsed.items), "their labels read back")

    # Publish a model and find it by name.
    with open(package, "rb") as f:
        payload = f.read()
    r = publish_model.sync_detailed(client=client, body=File(payload=payload), name="py-model", tags="python")
    expect(r.status_code == 201 and isinstance(r.parsed, Model), f"publish the model: {r.status_code}")
    model = r.parsed
    r = list_models.sync_detailed(client=client, name="py-model")
    expect(r.status_code == 200 and [m.id for m in r.parsed.items] == [model.id], "list models by name finds it")

    # A domain over the berlin devices: its campaign targets them.
    body = DomainRequest(
        name="py-contrast", model_id=model.id, selector=Selector(labels=Labels.from_dict({"fleet": "python", "site": "berlin"})),
        job=JobSpec(loss=JobSpecLoss.TENT, steps=10, timeout_s=600, max_attempts=2),
        rollout=Rollout(canary_pct=50, wave_size_pct=50, success_threshold_pct=50),
    )
    r = create_domain.sync_detailed(client=client, body=body, idempotency_key=str(uuid.uuid4()))
    expect(r.status_code == 201 and isinstance(r.parsed, DomainCreated), f"create the domain: {r.status_code}")
    campaign_id = r.parsed.campaign.id
    r = get_campaign.sync_detailed(campaign_id, client=client)
    expect(r.status_code == 200 and isinstance(r.parsed, Campaign) and r.parsed.target_count == 2, "its campaign targets 2 devices")

    # The fleet summary counts the devices.
    r = get_fleet_summary.sync_detailed(client=client)
    expect(r.status_code == 200 and isinstance(r.parsed, FleetSummary), f"fleet summary: {r.status_code}")
    active = r.parsed.devices_by_status.additional_properties.get("active")
    expect(active == 3, f"the summary counts 3 active devices: {active}")

    # Refusals are problems with a stable code: an unknown device (404), a malformed label filter (400), a
    # registration the coordinator refuses (422, naming the field).
    r = get_device.sync_detailed(uuid.uuid4(), client=client)
    expect(r.status_code == 404 and isinstance(r.parsed, Problem) and r.parsed.code == "not_found", f"unknown device: {r.parsed}")
    r = list_devices.sync_detailed(client=client, labels="site")
    expect(r.status_code == 400 and isinstance(r.parsed, Problem), f"bad label filter: {r.status_code}")
    bad_filter = r.parsed.code
    body = DeviceRegistration(name="py-bad", hardware=Hardware(class_="jetson-tx2", gflops=-1.0, memory_mb=4096),
                              constraints=Constraints(latency_budget_ms=30.0, memory_budget_mb=256.0))
    r = register_device.sync_detailed(client=client, body=body)
    expect(r.status_code == 422 and isinstance(r.parsed, Problem), f"bad registration: {r.status_code}")
    fields = [e.field for e in r.parsed.errors]
    expect("hardware.gflops" in fields, f"the refusal names hardware.gflops: {fields}")

    print(json.dumps({
        "devices": [str(d.id) for d in created], "model": str(model.id), "campaign": str(campaign_id),
        "codes": [bad_filter, r.parsed.code],
    }))


if __name__ == "__main__":
    main()
