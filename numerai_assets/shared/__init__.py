"""What every stage uses: settings, resources, the Numerai API, the warehouse, the home layout, partitions."""
