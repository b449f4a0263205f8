"""Generated stubs of the CNI backend contract (cni_backend.proto).

Do not edit the *_pb2* files: change the .proto and run scripts/gen_proto.sh.
"""
