#!/usr/bin/env python3
"""Turns the deploy kit's files into JSON for tests/deploy_kit.rs, with real parsers.

    to_json.py yaml FILE        every document of a YAML file, as a JSON list
    to_json.py hcl FILE...      {"FILE": <python-hcl2 tree>, ...} for Terraform files
    to_json.py dockerfile FILE  {"structure": [...], "parent_images": [...], ...}

YAML is read strictly: a key given twice in one mapping is an error (PyYAML keeps the
last one silently, Kubernetes and Fluent Bit would not agree on which one wins).
Any parse error exits with status 1 and the parser's message on stderr.

Run with the interpreter of target/deploy-tools-venv (made by .ci/install-deploy-tools.sh).
"""

import json
import sys


def load_yaml(path):
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found duplicate key %r" % (key,),
                    key_node.start_mark,
                )
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
    )
    with open(path, encoding="utf-8") as f:
        return list(yaml.load_all(f, Loader=StrictLoader))


def load_hcl(paths):
    import hcl2

    out = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            out[path] = hcl2.load(f)
    return out


def load_dockerfile(path):
    from dockerfile_parse import DockerfileParser

    with open(path, "rb") as f:
        parser = DockerfileParser(fileobj=f)
        return {
            "structure": parser.structure,
            "parent_images": parser.parent_images,
            "baseimage": parser.baseimage,
        }


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    kind, files = argv[1], argv[2:]
    try:
        if kind == "yaml" and len(files) == 1:
            data = load_yaml(files[0])
        elif kind == "hcl":
            data = load_hcl(files)
        elif kind == "dockerfile" and len(files) == 1:
            data = load_dockerfile(files[0])
        else:
            sys.stderr.write(__doc__)
            return 2
    except Exception as e:  # the parser's own message is what the test shows
        sys.stderr.write("%s: %s: %s\n" % (" ".join(files), type(e).__name__, e))
        return 1
    json.dump(data, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
