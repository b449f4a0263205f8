"""What is measured around each load run: VPP graph node clocks and process CPU time."""
