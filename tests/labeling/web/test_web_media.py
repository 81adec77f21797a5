"""Images of a pool given as a table of paths: confined to the table's folder at init, served after."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from headstart.errors import DataError
from headstart.labeling import init_project
from headstart.labeling.users import add_user
from headstart.labeling.web import create_app

PNG = b"\x89PNG\r\n\x1a\n"


def images(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (8, 8), (40 * i, 90, 160)).save(folder / f"{i}.png")
    return folder


def serve(project):
    token = add_user(project.store, "ana", "annotator")
    return TestClient(create_app(project), base_url="http://127.0.0.1"), {"Authorization": f"Bearer {token}"}


def test_a_table_of_image_paths_is_served_by_item_id(tmp_path):
    folder = images(tmp_path / "shots")
    (folder / "sub").mkdir()
    (folder / "sub" / "3.png").write_bytes((folder / "0.png").read_bytes())
    (folder / "pool.csv").write_text("path\n0.png\n1.png\nsub/3.png\n")
    client, auth = serve(init_project(folder / "pool.csv", labels="a,b", db=str(tmp_path / "p.db"),
                                      backbone="effnet-lite0"))
    batch = client.get("/api/next?n=3", headers=auth).json()["items"]
    assert sorted(item["media"] for item in batch) == ["/media/2", "/media/3", "/media/4"]
    for item in batch:
        response = client.get(item["media"], headers=auth)
        assert response.status_code == 200 and response.content[:8] == PNG
    assert client.get("/media/2").status_code == 401
    assert client.get("/media/9", headers=auth).status_code == 404


def test_ids_from_an_id_column_and_a_server_started_elsewhere(tmp_path, monkeypatch):
    folder = images(tmp_path / "shots")
    (folder / "pool.csv").write_text("id,path\ncat-a,0.png\ncat-b,1.png\n")
    monkeypatch.chdir(folder)
    project = init_project("pool.csv", labels="a,b", db=str(tmp_path / "p.db"), backbone="effnet-lite0")
    monkeypatch.chdir(tmp_path)  # the relative pool path must not matter to the server
    client, auth = serve(project)
    response = client.get("/media/cat-b", headers=auth)
    assert response.status_code == 200 and response.content == (folder / "1.png").read_bytes()


@pytest.mark.parametrize("cell, problem", [("../outside.png", "leads outside"), ("sub/../../outside.png", "leads outside"),
                                           ("ABSOLUTE", "is absolute"), ("link.png", "leads outside")])
def test_init_refuses_image_paths_that_leave_the_tables_folder(tmp_path, cell, problem):
    folder = images(tmp_path / "shots")
    (folder / "sub").mkdir()
    images(tmp_path, 1)
    (tmp_path / "0.png").rename(tmp_path / "outside.png")
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    cell = str(tmp_path / "outside.png") if cell == "ABSOLUTE" else cell
    (folder / "pool.csv").write_text(f"path\n0.png\n{cell}\n")
    with pytest.raises(DataError, match=problem) as caught:
        init_project(folder / "pool.csv", labels="a,b", db=str(tmp_path / "p.db"), backbone="effnet-lite0")
    assert str(caught.value).startswith("pool.csv row 3, column 'path'") and "\n" not in str(caught.value)
    assert not (tmp_path / "p.db").exists()  # refused before anything was written


def test_init_refusal_is_one_line_and_exit_2_from_the_cli(tmp_path):
    from typer.testing import CliRunner

    from headstart.cli import app

    folder = images(tmp_path / "shots")
    images(tmp_path / "elsewhere", 1)
    (folder / "pool.csv").write_text("path\n0.png\n../elsewhere/0.png\n")
    result = CliRunner().invoke(app, ["label", "init", str(folder / "pool.csv"), "--labels", "a,b",
                                      "--db", str(tmp_path / "p.db"), "--backbone", "effnet-lite0"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "row 3, column 'path'" in result.output


@pytest.mark.parametrize("pool_kind", ["folder", "table"])
def test_a_nul_byte_or_an_image_swapped_for_a_link_after_init_is_404(tmp_path, pool_kind):
    folder = images(tmp_path / "shots")
    (tmp_path / "secret.png").write_bytes(b"TOP SECRET")
    if pool_kind == "table":
        (folder / "pool.csv").write_text("id,path\n0.png,0.png\n1.png,1.png\n2.png,2.png\n")
    project = init_project(folder / "pool.csv" if pool_kind == "table" else folder, labels="a,b",
                           db=str(tmp_path / "p.db"), backbone="effnet-lite0")
    (folder / "1.png").unlink()
    (folder / "1.png").symlink_to(tmp_path / "secret.png")
    client, auth = serve(project)
    assert client.get("/media/0.png", headers=auth).status_code == 200
    for path in ("x%00", "0.png%00", "%00", "1.png"):
        response = client.get(f"/media/{path}", headers=auth)
        assert response.status_code == 404, path
        assert b"TOP SECRET" not in response.content


def test_an_uploaded_label_studio_task_never_opens_a_file_of_the_server(tmp_path):
    """A task naming a file on the server is matched by its name alone when uploaded: the answer is the
    same whether that file exists or not. From the command line (the user's own machine) its bytes match."""
    import json

    from headstart.labeling.exchange import import_labels

    folder = images(tmp_path / "shots")
    (folder / "pool.csv").write_text("path\n0.png\n1.png\n")
    project = init_project(folder / "pool.csv", labels="a,b", db=str(tmp_path / "p.db"), backbone="effnet-lite0")
    secret = tmp_path / "elsewhere" / "renamed.png"
    secret.parent.mkdir()
    secret.write_bytes((folder / "0.png").read_bytes())
    token = add_user(project.store, "root", "admin")
    client = TestClient(create_app(project), base_url="http://127.0.0.1")

    def upload(image: str):
        task = [{"data": {"image": image}, "annotations": [{"result": [{"type": "choices", "value": {"choices": ["a"]}}]}]}]
        return client.post("/api/import", files={"file": ("tasks.json", json.dumps(task), "application/json")},
                           headers={"Authorization": f"Bearer {token}"})

    there, absent = upload(str(secret)), upload(str(tmp_path / "nowhere" / "renamed.png"))
    assert there.status_code == absent.status_code == 400
    assert there.json()["detail"] == absent.json()["detail"] and "matches no item" in there.json()["detail"]
    assert project.count_labels() == 0

    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"data": {"image": str(secret)},
                                  "annotations": [{"result": [{"type": "choices", "value": {"choices": ["a"]}}]}]}]))
    assert import_labels(project, tasks) == 1
