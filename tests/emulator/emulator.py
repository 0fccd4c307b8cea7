"""The test-facing facade: start the server on a free loopback port, seed it, inspect it."""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tests.emulator.faults import Faults, request_matches
from tests.emulator.pipelines import Box, submit_review, trigger_continuous_training
from tests.emulator.review import Review, review_preannotations
from tests.emulator.routes import build_router
from tests.emulator.seeding import (
    SeededIds,
    add_dataset_version,
    add_model_version,
    seed_experiment,
)
from tests.emulator.server import EmulatorServer
from tests.emulator.state import Dataset, Job, RequestRecord, State

if TYPE_CHECKING:
    import picsellia

LOOPBACK = ("127.0.0.1", "localhost")


def loopback_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """NO_PROXY/no_proxy values that keep loopback traffic off an HTTP(S) proxy.

    requests honours HTTP(S)_PROXY for every host not listed in NO_PROXY, and a proxy cannot
    reach 127.0.0.1 of this machine, so without this every SDK call fails to connect.
    """
    current = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    hosts = [h for h in current.split(",") if h]
    value = ",".join(hosts + [h for h in LOOPBACK if h not in hosts])
    return {"NO_PROXY": value, "no_proxy": value}


class Emulator:
    def __init__(self, token: str = "emulator-token", port: int = 0, fault_seed: int = 0) -> None:
        self.state = State(token)
        self.faults = Faults(fault_seed)
        self._server = EmulatorServer(("127.0.0.1", port), self.state, build_router(), self.faults)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.state.storage.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @classmethod
    def start(cls, token: str = "emulator-token", port: int = 0, fault_seed: int = 0) -> Emulator:
        emulator = cls(token, port, fault_seed)
        emulator._thread.start()
        return emulator

    def stop(self) -> None:
        """Stop serving, cut idle keep-alive connections and join every server thread."""
        self._server.stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def token(self) -> str:
        return self.state.token

    @property
    def organization_id(self) -> str:
        return str(self.state.organization.id)

    def seed_experiment(
        self,
        splits: Mapping[str, tuple[Path, Path]],
        *,
        dataset_type: str = "OBJECT_DETECTION",
        parameters: Mapping[str, Any] | None = None,
        experiment_files: Mapping[str, Path] | None = None,
        base_model_files: Mapping[str, Path] | None = None,
        with_job: bool = True,
        project_name: str = "emulated-project",
        experiment_name: str = "emulated-experiment",
    ) -> SeededIds:
        """Datalake data, one dataset version per split alias (images folder + COCO file),
        attached to a new experiment; `parameters` become its `parameters` log."""
        with self.state.lock:
            return seed_experiment(
                self.state,
                splits=splits,
                dataset_type=dataset_type,
                parameters=parameters,
                experiment_files=experiment_files,
                base_model_files=base_model_files,
                with_job=with_job,
                project_name=project_name,
                experiment_name=experiment_name,
            )

    def seed_dataset_version(
        self,
        images_dir: Path,
        coco_path: Path,
        *,
        dataset_type: str = "OBJECT_DETECTION",
        dataset_name: str = "emulated-dataset",
        version_name: str = "pool",
    ) -> uuid.UUID:
        """One version from a folder and a COCO file (`seeding.add_dataset_version`): the images
        the file annotates are annotated assets, the others never-annotated ones."""
        with self.state.lock:
            dataset = next(
                (d for d in self.state.datasets.values() if d.name == dataset_name),
                None,
            ) or Dataset(dataset_name)
            version = add_dataset_version(
                self.state, dataset, version_name, images_dir, coco_path, dataset_type
            )
            return version.id

    def seed_model_version(
        self,
        files: Mapping[str, Path],
        *,
        dataset_type: str = "OBJECT_DETECTION",
        labels: list[str],
        framework: str = "ONNX",
        model_name: str = "emulated-model",
    ) -> uuid.UUID:
        """The next version of model `model_name` holding `files` (e.g. `{"model-latest":
        path}`)."""
        with self.state.lock:
            version = add_model_version(
                self.state, model_name, files, dataset_type, labels, framework
            )
            return version.id

    def launched_processings(self, dataset_version_id: uuid.UUID | str) -> list[Job]:
        """The jobs `launch_processing` made on a dataset version."""
        with self.state.lock:
            return [
                job
                for job in self.state.jobs.values()
                if job.processing
                and str(job.processing.dataset_version_id) == str(dataset_version_id)
            ]

    def processing_env(self, job: Job) -> dict[str, str]:
        """The container variables the platform gives a processing's image: no experiment."""
        if job.processing is None:
            raise ValueError(f"job {job.id} was not launched from a processing")
        return {
            "api_token": self.token,
            "host": self.url,
            "organization_id": self.organization_id,
            "job_id": str(job.id),
        }

    def review_preannotations(
        self, version_id: uuid.UUID | str, truth: Path, tag: str, into: uuid.UUID | str
    ) -> Review:
        """A human reviewing the pre-annotated assets against `truth` (a COCO file by file
        name), then adding them to the version `into` (`review.py`)."""
        with self.state.lock:
            return review_preannotations(
                self.state, uuid.UUID(str(version_id)), truth, tag, uuid.UUID(str(into))
            )

    def user_env(self) -> dict[str, str]:
        """A user's `.env` for this emulator, under the names README tells users to keep
        (what the workflow commands read): their token, organization and host."""
        return {
            "API_TOKEN": self.token,
            "ORGANIZATION_ID": self.organization_id,
            "PICSELLIA_HOST": self.url,
        }

    def job_env(self, ids: SeededIds) -> dict[str, str]:
        """The container variables a training job reads, pointing at this emulator."""
        env = {
            "api_token": self.token,
            "host": self.url,
            "organization_id": str(ids.organization_id),
            "experiment_id": str(ids.experiment_id),
        }
        if ids.job_id is not None:
            env["job_id"] = str(ids.job_id)
        return env

    def launched_jobs(self, experiment_id: uuid.UUID | str) -> list[Job]:
        """The jobs `experiment.launch` (or continuous training) made for an experiment."""
        with self.state.lock:
            return [
                job
                for job in self.state.jobs.values()
                if job.launch and str(job.launch.experiment_id) == str(experiment_id)
            ]

    def launch_env(self, job: Job) -> dict[str, str]:
        """The container variables the platform gives the image it runs for a launched job."""
        if job.launch is None:
            raise ValueError(f"job {job.id} was not launched from an experiment")
        return {
            "api_token": self.token,
            "host": self.url,
            "organization_id": self.organization_id,
            "experiment_id": str(job.launch.experiment_id),
            "job_id": str(job.id),
        }

    def trigger_continuous_training(self, deployment_id: uuid.UUID | str) -> Job:
        """The platform's side of continuous training: a new experiment on the deployment's
        current model version, launched (see `pipelines.py`)."""
        with self.state.lock:
            return trigger_continuous_training(self.state, uuid.UUID(str(deployment_id)))

    def submit_review(
        self,
        deployment_id: uuid.UUID | str,
        data_id: uuid.UUID | str,
        shapes: Sequence[tuple[str, Box | None]],
    ) -> Job | None:
        """A reviewer's corrected prediction submitted to the feedback loop; the job of the
        continuous training it triggered, if it did (see `pipelines.py`)."""
        with self.state.lock:
            return submit_review(
                self.state, uuid.UUID(str(deployment_id)), uuid.UUID(str(data_id)), shapes
            )

    def client(self) -> picsellia.Client:
        """A real SDK client on this emulator; its session ignores proxy variables."""
        import picsellia
        import requests

        session = requests.Session()
        session.trust_env = False
        return picsellia.Client(
            api_token=self.token,
            organization_id=self.organization_id,
            host=self.url,
            session=session,
        )

    def requests(self, method: str = "*", path: str | re.Pattern[str] = "*") -> list[RequestRecord]:
        """Recorded requests matching a method and a path glob (same syntax as fault rules)."""
        with self.state.lock:
            return [
                r for r in self.state.requests if request_matches(method, path, r.method, r.path)
            ]
