"""Probers: raw socket (default), scapy, simulated."""
