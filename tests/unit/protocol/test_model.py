"""The service models are botocore's documents, read without importing botocore (a worker's
memory, issue 17), and botocore's own loader still reads a model a user put in
~/.aws/models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.loaders import create_loader

from strongroom.protocol.model import service_document

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("service", ["kms", "ssm"])
def test_a_service_document_is_the_one_botocores_loader_gives(service: str) -> None:
    assert service_document(service) == create_loader().load_service_model(service, "service-2")


def _modules_after_loading_the_server(home: Path) -> list[str]:
    code = (
        "import sys, strongroom.server.wiring, strongroom.server.app\n"
        "from strongroom.protocol.model import load_model\n"
        "load_model()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'botocore')))\n"
    )
    env = {**os.environ, "HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_the_server_and_its_kms_model_load_without_botocore(tmp_path: Path) -> None:
    assert _modules_after_loading_the_server(tmp_path) == []


def test_a_model_in_the_users_aws_models_is_read_by_botocores_loader(tmp_path: Path) -> None:
    builtin = create_loader().load_service_model("kms", "service-2")
    version = builtin["metadata"]["apiVersion"]
    custom = tmp_path / ".aws" / "models" / "kms" / version
    custom.mkdir(parents=True)
    (custom / "service-2.json").write_text(json.dumps(builtin))
    assert "botocore.loaders" in _modules_after_loading_the_server(tmp_path)
