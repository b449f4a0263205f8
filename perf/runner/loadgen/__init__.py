"""Load generators: iperf3 (TCP/UDP, parsed JSON) and TRex stateless profiles."""
