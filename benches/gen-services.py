#!/usr/bin/env python3
"""Writes N LoadBalancer Services as `kubectl get services -A -o yaml` prints them.

For the memory and start-up measurements at scale (README, Performance): the objects as
kubectl prints them, status included, 10 % of the Services annotated with a hostname (the
others get the default <name>.<namespace>.<domain>), each with the fields real Services
carry and we do not read (labels, ports, clusterIPs, selector, uid...). By default one
document per Service (`---`); with --list, one `kind: List` document holding them all, as
`kubectl get -A -o yaml` prints it; with --json, that list as `kubectl get -A -o json`
prints it (the same objects, four-space indent).

    python3 benches/gen-services.py 100000 > /tmp/services-100k.yaml
    python3 benches/gen-services.py --json 100000 > /tmp/services-100k.json
"""

import json
import sys


def service(i: int) -> str:
    ns = f"ns{i % 100}"
    name = f"app{i}"
    ip = f"10.{64 + i // 65536}.{i // 256 % 256}.{i % 256}"
    cluster_ip = f"10.43.{i // 256 % 256}.{i % 256}"
    annotations = ""
    if i % 10 == 0:
        annotations = (
            "    annotations:\n"
            f"      coredns.io/hostname: {name}.home.example\n"
            "      meta.helm.sh/release-name: apps\n"
            "      meta.helm.sh/release-namespace: apps\n"
        )
    return f"""- apiVersion: v1
  kind: Service
  metadata:
{annotations}    creationTimestamp: "2026-01-01T00:00:00Z"
    labels:
      app.kubernetes.io/instance: {name}
      app.kubernetes.io/managed-by: Helm
      app.kubernetes.io/name: {name}
    name: {name}
    namespace: {ns}
    resourceVersion: "{100000 + i}"
    uid: 00000000-0000-4000-8000-{i:012d}
  spec:
    allocateLoadBalancerNodePorts: true
    clusterIP: {cluster_ip}
    clusterIPs:
    - {cluster_ip}
    externalTrafficPolicy: Cluster
    internalTrafficPolicy: Cluster
    ipFamilies:
    - IPv4
    ipFamilyPolicy: SingleStack
    ports:
    - name: http
      nodePort: {30000 + i % 2768}
      port: 80
      protocol: TCP
      targetPort: http
    selector:
      app.kubernetes.io/instance: {name}
      app.kubernetes.io/name: {name}
    sessionAffinity: None
    type: LoadBalancer
  status:
    loadBalancer:
      ingress:
      - ip: {ip}
        ipMode: VIP
"""


def service_object(i: int) -> dict:
    """The same Service as service(i), as kubectl's JSON holds it."""
    ns = f"ns{i % 100}"
    name = f"app{i}"
    ip = f"10.{64 + i // 65536}.{i // 256 % 256}.{i % 256}"
    cluster_ip = f"10.43.{i // 256 % 256}.{i % 256}"
    metadata = {}
    if i % 10 == 0:
        metadata["annotations"] = {
            "coredns.io/hostname": f"{name}.home.example",
            "meta.helm.sh/release-name": "apps",
            "meta.helm.sh/release-namespace": "apps",
        }
    metadata |= {
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/name": name,
        },
        "name": name,
        "namespace": ns,
        "resourceVersion": f"{100000 + i}",
        "uid": f"00000000-0000-4000-8000-{i:012d}",
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "allocateLoadBalancerNodePorts": True,
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "externalTrafficPolicy": "Cluster",
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [
                {
                    "name": "http",
                    "nodePort": 30000 + i % 2768,
                    "port": 80,
                    "protocol": "TCP",
                    "targetPort": "http",
                }
            ],
            "selector": {
                "app.kubernetes.io/instance": name,
                "app.kubernetes.io/name": name,
            },
            "sessionAffinity": "None",
            "type": "LoadBalancer",
        },
        "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}},
    }


def main() -> None:
    args = sys.argv[1:]
    as_list = "--list" in args
    as_json = "--json" in args
    args = [a for a in args if a not in ("--list", "--json")]
    if len(args) != 1 or not args[0].isdigit():
        sys.exit("usage: gen-services.py [--list | --json] COUNT")
    out = sys.stdout
    if as_json:
        # Item by item, as kubectl streams it, rather than one string for 100 MB.
        out.write('{\n    "apiVersion": "v1",\n    "items": [')
        for i in range(int(args[0])):
            item = json.dumps(service_object(i), indent=4)
            out.write(("," if i else "") + "\n" + "\n".join("        " + line for line in item.splitlines()))
        out.write('\n    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n')
        return
    if as_list:
        out.write("apiVersion: v1\nitems:\n")
    for i in range(int(args[0])):
        item = service(i)
        if as_list:
            out.write(item)
        else:
            # The list item as a document of its own: drop "- " and the indent.
            out.write("---\n" + "".join(line[2:] + "\n" for line in item.splitlines()))
    if as_list:
        out.write('kind: List\nmetadata:\n  resourceVersion: ""\n')


if __name__ == "__main__":
    main()
