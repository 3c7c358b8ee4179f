"""The layout of the plant kernel's arrays, shared by its two builds (``plant/kernel.py``,
numba; ``plant/ckernel.py``, C from ``plant/kernel.c``, which repeats these numbers in an
enum): what :class:`plant.lander.LanderPlant` fills and reads back. No numba here, so that
a plant on the C kernel never imports it."""

N_STATE = 15        # as plant.dynamics.N_STATE

# Constants ``p`` (float64), set once per run.
P_DT = 0            # physics step, s
P_DT_US = 1         # physics step, us (a whole number)
P_IXX, P_IYY, P_IZZ = 2, 3, 4
P_FMAX = 5          # max thrust, N
P_VE = 6            # exhaust velocity, m/s
P_DRY = 7           # dry mass, kg
P_MGM = 8           # -GM, m^3/s^2
P_TAU = 9           # throttle time constant, s (<= 0: no lag)
P_TWO = 10          # 2.0: the exponent of the quaternion norm's squares
P_SPI = 11          # physics steps per IMU sample
P_SAT = 12          # 1.0: the IMU saturates
P_QUANT = 13        # 1.0: the IMU quantises
P_LIMIT = 14        # the IMU's limits per sample, 6
P_QUANTUM = 20      # the IMU's quanta, 6
N_P = 26

# What changes per call ``io`` (float64), in and out.
IO_STATE = 0        # the state, 15 (in)
IO_ACC = 15         # open increments since the last IMU sample: dv_z, dth_x, dth_y, dth_z
IO_CARRY = 19       # the IMU's quantisation carry, 6
IO_STEP = 25        # physics steps done (a whole number)
IO_ROW = 26         # next row of the IMU's error block (a whole number)
IO_THR = 27         # throttle target (in)
IO_TQ = 28          # torque, body axes, N m, 3 (in)
N_IO = 31

# Per step ``out[j]`` (float64): the state after it, and for sample k (row k) the IMU's.
O_STATE = 0         # 15
O_IMU = 15          # [t_us, dvx, dvy, dvz, dax, day, daz] measured, 7
O_TRUE = 22         # the true increments, 6
O_STEP = 28         # the sample's step within the call
N_OUT = 29
